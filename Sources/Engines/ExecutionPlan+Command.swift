import FoundationEssentials
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

extension PlanBuilder {
    /// udocker `_check_paths`: `-w`, else WorkingDir, else the user's home; it must be a directory
    /// once resolved inside the container (symlinks followed within ROOT, volumes mapped).
    mutating func workingDirectory(bindings: [RootDirectory.Volume]) throws -> String {
        var fromHome = false
        var cwd: String
        if let w = options.workdir, !w.isEmpty {
            cwd = w
        } else if let w = meta.workingDir, !w.isEmpty {
            cwd = w
        } else {
            cwd = user.home; fromHome = true
        }
        guard cwd.hasPrefix("/") else { throw EngineError.invalid("invalid working directory, must be absolute: \(cwd)") }
        let n = PathName.normalize(cwd)
        // CVE-2024-21626: a working directory under /proc (e.g. /proc/self/fd/N) can escape.
        if PathName.isUnder(n, "/proc") { throw EngineError.invalid("invalid working directory: \(cwd)") }
        let r: RootDirectory.Resolved
        do { r = try rootFS.resolve(n, volumes: bindings) } catch {
            throw EngineError.invalid("invalid working directory: \(cwd)")
        }
        if r.exists && r.isDirectory && !PathName.isUnder(r.path, "/proc") { return n }
        if fromHome {
            warnings.append(.homeNotFound(directory: cwd))
            return "/"
        }
        throw EngineError.invalid("invalid working directory: \(cwd)")
    }

    /// udocker `_check_executable`: entrypoint + cmd (none → `bash -i`), searched in the
    /// container PATH, must be an executable regular file.
    mutating func findExecutable(cwd: String, bindings: [RootDirectory.Volume]) throws -> (String, [String]) {
        var entry: [String]
        if let ep = options.entrypoint {
            entry = ep.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        } else {
            entry = meta.entrypoint ?? []
        }
        let cmd = options.command.isEmpty ? (meta.cmd ?? []) : options.command
        var argv = entry + cmd
        if argv.isEmpty || argv[0].isEmpty {
            warnings.append(.assumingShell)
            argv = ["bash", "-i"]
        }
        let name = argv[0]
        var candidates: [String] = []
        if name.contains("/") {
            candidates = [PathName.normalize(name.hasPrefix("/") ? name : cwd + "/" + name)]
        } else {
            for dir in (containerEnv["PATH"] ?? "").split(separator: ":", omittingEmptySubsequences: true) {
                let d = dir.hasPrefix("/") ? String(dir) : cwd + "/" + dir
                candidates.append(PathName.normalize(d + "/" + name))
            }
        }
        for c in candidates {
            guard let r = try? rootFS.resolve(c, volumes: bindings), r.exists, r.isRegularFile,
                r.mode & 0o111 != 0
            else { continue }
            return (c, argv)
        }
        throw EngineError.invalid("command not found or has no execute bit set: \(name)")
    }
}
