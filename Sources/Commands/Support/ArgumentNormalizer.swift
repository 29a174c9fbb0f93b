/// udocker accepts `-x=value` for short options (`-v=/a:/b`, `-e=X=1`); ArgumentParser wants
/// `-x value`. Options are only recognised before the first positional argument: everything from
/// that argument on is positional (so `run c ls -l` passes `-l` to `ls`).
enum ArgumentNormalizer {
    /// `--opt=` and `-x=` (what the shell leaves of `--opt=""`) mean "not given", as in udocker
    /// (an empty value is false there), and are dropped, instead of ArgumentParser taking the next
    /// argument as the value; only `--entrypoint=` keeps its empty value (it drops the entrypoint).
    static func splitShortEquals(_ args: [String]) -> [String] {
        var out: [String] = []
        for a in args {
            let u = Array(a.utf8)
            if u.count > 3, u[0] == UInt8(ascii: "-"), u[1] != UInt8(ascii: "-"), u[2] == UInt8(ascii: "=") {
                out.append(String(a.prefix(2))); out.append(String(a.dropFirst(3)))
            } else if u.count > 3, u[0] == UInt8(ascii: "-"), u[1] == UInt8(ascii: "-"), u.last == UInt8(ascii: "="),
                u.firstIndex(of: UInt8(ascii: "=")) == u.count - 1
            {
                if keepsEmptyValue.contains(String(a.dropLast())) { out.append(String(a.dropLast())); out.append("") }
            } else if u.count == 3, u[0] == UInt8(ascii: "-"), u[1] != UInt8(ascii: "-"), u[2] == UInt8(ascii: "=") {
                continue
            } else {
                out.append(a)
            }
        }
        return out
    }

    /// Options parsed into enums: `--opt ""` is "not given" (as `--opt=`), never a bad value.
    static let typedOptions: Set<String> = ["--execmode", "--storage", "--pull"]

    /// Options whose empty value means something.
    static let keepsEmptyValue: Set<String> = ["--entrypoint"]

    /// `--opt ""` for a valued option: dropped like `--opt=` (see `splitShortEquals`).
    static func dropEmptyValues(_ args: [String], valued: Set<String>) -> [String] {
        var out: [String] = []
        var i = 0
        while i < args.count {
            if args[i] == "--" { out += args[i...]; break }
            if valued.contains(args[i]), !keepsEmptyValue.contains(args[i]), i + 1 < args.count, args[i + 1].isEmpty { i += 2; continue }
            if valued.contains(args[i]), i + 1 < args.count { out += [args[i], args[i + 1]]; i += 2; continue }
            out.append(args[i]); i += 1
        }
        return out
    }

    /// Splits `args` into (options + the first `positionalCount` positionals, the rest). Options in
    /// `valued` take the next token as their value when it is not written `--opt=value`.
    static func splitAtPositionals(_ args: [String], positionalCount: Int, valued: Set<String>) -> ([String], [String]) {
        var head: [String] = []
        var i = 0
        var seen = 0
        while i < args.count {
            let a = args[i]
            if a == "--" { head.append(a); i += 1; if i < args.count { head.append(args[i]); i += 1; seen += 1 }; break }
            if a.hasPrefix("-") && a.count > 1 {
                head.append(a)
                if !a.contains("="), valued.contains(a), i + 1 < args.count { head.append(args[i + 1]); i += 2; continue }
                i += 1
                continue
            }
            head.append(a); i += 1; seen += 1
            if seen >= positionalCount { break }
        }
        return (head, Array(args[i...]))
    }
}
