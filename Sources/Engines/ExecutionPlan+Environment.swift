import ContainerModel
import FoundationEssentials
import OCI
import UDockerSystem

/// An ordered environment: keys keep their first position, values can be replaced.
struct EnvironmentList: Sendable, Equatable {
    private(set) var keys: [String] = []
    private(set) var values: [String: String] = [:]

    subscript(key: String) -> String? { values[key] }
    func contains(_ key: String) -> Bool { values[key] != nil }

    mutating func set(_ key: String, _ value: String) {
        if values[key] == nil { keys.append(key) }
        values[key] = value
    }
    mutating func setIfAbsent(_ key: String, _ value: String) {
        if values[key] == nil { set(key, value) }
    }
    mutating func remove(_ key: String) {
        guard values.removeValue(forKey: key) != nil else { return }
        keys.removeAll { $0 == key }
    }
    var entries: [String] { keys.map { "\($0)=\(values[$0]!)" } }
}

extension PlanBuilder {
    /// Host variables that pass without `--hostenv` (udocker `valid_host_env`, minus PROOT_TMP_DIR
    /// which the PRoot engine sets itself), and the ones that never pass.
    static let passingHostVariables: Set<String> = ["TERM", "PATH"]
    static let blockedHostVariables: Set<String> = ["VTE_VERSION"]

    /// A valid variable name: not empty, no `=`, no whitespace, not starting with a digit.
    static func isValidKey(_ key: Substring) -> Bool {
        guard let first = key.first, !first.isNumber else { return false }
        return !key.contains(where: { $0 == "=" || $0.isWhitespace || $0 == "\0" })
    }

    /// Splits `K=V`; a bare `K` takes the host value (nil when unset).
    func pair(_ item: String) -> (String, String?)? {
        if let eq = item.firstIndex(of: "=") {
            return (String(item[..<eq]), String(item[item.index(after: eq)...]))
        }
        return (item, env.hostEnvironment[item])
    }

    /// `-e` > image Env > `--env-file` (udocker `_run_load_metadata`, `_run_env_cmdoptions`).
    mutating func buildContainerEnvironment() throws {
        for item in options.env where !item.isEmpty {
            guard let (k, v) = pair(item), Self.isValidKey(Substring(k)) else {
                throw EngineError.invalid("invalid environment variable: \(item)")
            }
            if let v { containerEnv.set(k, v) }
        }
        for item in meta.env ?? [] where !item.isEmpty {
            guard let eq = item.firstIndex(of: "="), Self.isValidKey(item[..<eq]) else {
                warnings.append(.invalidImageVariable(Format.printable(String(item.prefix(80)))))
                continue
            }
            let k = String(item[..<eq])
            if !containerEnv.contains(k) {
                containerEnv.set(k, String(item[item.index(after: eq)...]))
                imageKeys.insert(k)
            }
        }
        for file in options.envFiles {
            let text: String
            guard FileManager.default.fileExists(atPath: file) else { throw EngineError.invalid("--env-file not found: \(file)") }
            do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
                throw EngineError.invalid("cannot read --env-file \(file): not a readable text file")
            }
            // udocker's `get_pair` per line: key and value trimmed (`K = V` is K=V), a bare `K`
            // takes the host value, and a line whose key is not a name (`export K=V`, `1X=…`) is
            // skipped: udocker skips it silently, we say so.
            for (n, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
                let line = raw.trimmed(where: \.isBlank)
                if line.isEmpty || line.hasPrefix("#") { continue }
                guard let (k, v) = pair(line), Self.isValidKey(Substring(k.trimmed(where: \.isBlank))) else {
                    let hint = line.hasPrefix("export ") ? " (udocker skips it too; write K=V)" : " (not K=V; udocker skips it too)"
                    warnings.append(.envFileLine("--env-file \(file) line \(n + 1): ignoring \(line.prefix(80))\(hint)"))
                    continue
                }
                if let v { containerEnv.setIfAbsent(k.trimmed(where: \.isBlank), v.trimmed(where: \.isBlank)) }
            }
        }
    }

    /// udocker `_check_paths`: PATH when the container environment has none.
    mutating func setDefaultPath() {
        if !containerEnv.contains("PATH") {
            containerEnv.set("PATH", user.isRoot ? env.rootPath : env.userPath)
        }
    }

    /// udocker `_run_env_set` plus host filtering: container values win over host ones.
    func finalEnvironment() -> [String] {
        var e = containerEnv
        if options.bindhome, let home = host.home { e.set("HOME", home) } else { e.setIfAbsent("HOME", user.home) }
        e.set("USER", user.name)
        e.set("LOGNAME", user.name)
        e.set("USERNAME", user.name)
        let id8 = String(container.id.prefix(8))
        e.set("PS1", user.isRoot ? "\(id8)# " : "\(id8)\\$ ")
        e.set("SHLVL", "0")
        e.set("container_ruser", host.name)
        e.set("container_root", container.root)
        e.set("container_uuid", container.id)
        e.set("container_execmode", mode.rawValue)
        e.set("container_names", Format.joined(container.names, separator: ","))
        addJobVariables(to: &e)
        for (key, value) in mpiParameters { e.setIfAbsent(key, value) }
        for key in env.hostEnvironment.keys.sorted() {
            if Self.blockedHostVariables.contains(key) { continue }
            if !options.hostenv && !Self.passingHostVariables.contains(key) { continue }
            e.setIfAbsent(key, env.hostEnvironment[key]!)
        }
        return e.entries
    }
}
