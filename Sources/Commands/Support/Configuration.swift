import ContainerModel
import FoundationEssentials
import UDockerSystem
import Engines
import Store
#if canImport(Glibc)
import Glibc
#endif

/// udocker's configuration (`Config.conf`): built-in defaults, then `/etc/udocker.conf`,
/// `~/.udocker/udocker.conf`, `<topdir>/udocker.conf`, `$UDOCKER_DIR/udocker.conf`, the
/// `--config` file, then `UDOCKER_*` environment variables, then the general CLI options.
///
/// Differences from udocker 1.3.x, on purpose: a stray `./u.conf` is not read implicitly;
/// `$UDOCKER_DIR/udocker.conf` is read, as udocker's documentation says; quotes around values
/// are removed (udocker issue #405).
public struct Configuration: Sendable {
    /// Where udocker 1.3.17 downloads its udockertools (static proot, runc, libfakechroot), the
    /// default of `tarball`, byte for byte as its `Config.conf['tarball']` (`version` and
    /// `showconf` print it): what `install` fetches when nothing else is configured.
    public static let udockerToolsURLs =
        "https://download.a.incd.pt/udocker/udocker-englib-1.2.11.tar.gz"
        + " https://raw.githubusercontent.com/jorge-lip/udocker-builds/master/tarballs/udocker-englib-1.2.11.tar.gz"
    /// The oldest udockertools release udocker 1.3.17 accepts (`tarball_release`).
    public static let udockerToolsRelease = "1.2.11"

    /// Every key, as strings, in a stable order for `showconf`.
    public private(set) var values: [String: String] = [:]
    public private(set) var order: [String] = []
    public private(set) var filesRead: [String] = []

    public static let defaults: [(String, String)] = [
        ("verbose_level", "3"),
        ("homedir", ""), ("topdir", ""),
        ("bindir", ""), ("libdir", ""), ("docdir", ""),
        ("reposdir", ""), ("layersdir", ""), ("containersdir", ""),
        ("tmpdir", ""), ("keystore", "keystore"), ("config", "udocker.conf"),
        ("tarball_release", udockerToolsRelease), ("tarball", udockerToolsURLs), ("tarball_sha256", ""), ("autoinstall", "False"),
        ("cmd", "bash -i"),
        ("root_path", "/usr/sbin:/sbin:/usr/bin:/bin"),
        ("user_path", "/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"),
        ("sysdirs_list", "/dev /proc /sys /etc/resolv.conf /etc/host.conf /lib/modules"),
        ("job_env_prefixes", Format.joined(JobEnvironment.defaultPrefixes, separator: " ")),
        ("dri_list", "/usr/lib64/dri /lib64/dri /usr/lib/dri /lib/dri"),
        ("override_default_execution_mode", ""),
        ("use_proot_executable", "UDOCKER"), ("use_runc_executable", ""),
        ("use_singularity_executable", ""), ("use_patchelf_executable", "UDOCKER"),
        ("proot_noseccomp", ""), ("proot_killonexit", "True"),
        ("fakechroot_so", ""), ("fakechroot_libc", ""),
        ("dockerio_index_url", "https://hub.docker.com"),
        ("dockerio_registry_url", "https://registry-1.docker.io"),
        ("http_proxy", ""), ("http_insecure", "False"), ("http_agent", ""),
        ("timeout", "12"), ("ctimeout", "6"), ("download_timeout", "1800"),
        ("pull_parallelism", "4"),
        ("transfer_stall_timeout", "30"), ("transfer_min_rate", "1024"), ("transfer_rate_window", "60"),
        ("pull_timeout", "0"), ("trusted_repository_owners", ""),
        ("location", ""), ("container_storage", ContainerStorage.defaultStorage.rawValue),
    ]

    /// Keys of ours that have no default line in `showconf`, and the keys of udocker's sample
    /// `etc/udocker.conf` that udocker itself never reads (`default_execution_mode`,
    /// `use_curl_exec`): a udocker configuration never draws a warning.
    static let otherKnownKeys: Set<String> = ["default_execution_mode", "use_curl_exec", "hostauth_list"]

    /// Values that must parse for udocker to use them: key → what it takes.
    static let typedKeys: [String: ValueType] = [
        "verbose_level": .integer, "pull_parallelism": .positiveInteger,
        "transfer_stall_timeout": .seconds, "transfer_min_rate": .count, "transfer_rate_window": .seconds,
        "pull_timeout": .seconds, "http_insecure": .boolean,
    ]

    enum ValueType {
        case integer, positiveInteger, seconds, count, boolean

        /// nil when `value` is of this type, else what was expected.
        func problem(_ value: String) -> String? {
            let v = value.trimmed(where: \.isBlank)
            switch self {
            case .integer: return Int(v) == nil ? "not a whole number" : nil
            case .positiveInteger: return (Int(v) ?? 0) < 1 ? "not a whole number of at least 1" : nil
            case .count: return (Int64(v) ?? -1) < 0 ? "not a whole number of at least 0" : nil
            case .seconds:
                guard let d = Double(v), d.isFinite, d >= 0 else { return "not a number of seconds (0 turns it off)" }
                return nil
            case .boolean:
                return Configuration.booleanWords.contains(v.lowercased()) ? nil : "not a boolean (True or False)"
            }
        }
    }
    static let booleanWords: Set<String> = ["true", "false", "1", "0", "yes", "no", "on", "off", ""]

    /// udocker 1.3.17's other `Config.conf` keys, with its values as its `showconf` prints them,
    /// so `showconf` lists every udocker key and a config file may set them. Applied before
    /// `defaults`, which win where both name a key.
    public static let udockerKeys: [(String, String)] = [
        ("installinfo", "['https://raw.githubusercontent.com/indigo-dc/udocker/master/messages']"),
        ("installretry", "3"),
        ("mountpoint_prefixes", "('/etc',)"),
        ("default_execution_modes", "{'x86_64': 'P1', 'x86': 'P1', 'arm64': 'P1', 'arm': 'P2', 'ppc64le': 'R1', 'DEFAULT': 'R1'}"),
        ("proot_link2symlink", "False"),
        ("ld_so_cache", "/etc/ld.so.cache"),
        ("fakechroot_expand_symlinks", "none"),
        ("fakechroot_cmd_subst", "/sbin/ldconfig=#RETURN(TRUE)#:/usr/sbin/ldconfig=#RETURN(TRUE)#"),
        (
            "libc_search",
            "('/usr/lib64/libc.so.[0-9]', '/usr/lib/x86_64-linux-gnu/libc.so.[0-9]', '/lib64/libc.so.[0-9]', '/usr/lib/libc.so.[0-9]', '/lib/libc.so.[0-9]', '/usr/libc.so.[0-9]', '/libc.so.[0-9]', '/libc.so')"
        ),
        ("lib_dirs_list_nvidia", "('/usr/lib/x86_64-linux-gnu', '/usr/lib64')"),
        ("lib_dirs_list_essential", "('/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib64', '/usr/lib64', '/lib', '/usr/lib')"),
        ("lib_dirs_list_append", "('.',)"),
        (
            "access_files",
            "('/sys/class/infiniband', '/dev/open-mx', '/dev/myri0', '/dev/myri1', '/dev/myri2', '/dev/myri3', '/dev/myri4', '/dev/myri5', '/dev/myri6', '/dev/myri7', '/dev/myri8', '/dev/myri9', '/dev/ipath', '/dev/kgni0', '/dev/mic/scif', '/dev/scif')"
        ),
        ("runc_nomqueue", "None"),
        (
            "runc_capabilities",
            "['CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW', 'CAP_SYS_CHROOT', 'CAP_MKNOD', 'CAP_AUDIT_WRITE', 'CAP_SETFCAP']"
        ),
        ("singularity_options", "['-w']"),
        ("valid_host_env", "('TERM', 'PATH', 'PROOT_TMP_DIR')"),
        ("invalid_host_env", "('VTE_VERSION',)"),
        ("cpu_affinity_exec_tools", "(['numactl', '-C', '%s', '--'], ['taskset', '-c', '%s'])"),
        ("use_curl_executable", ""),
        ("docker_registries", "{'docker.io': ['https://registry-1.docker.io', 'https://hub.docker.com']}"),
        ("nvi_etc_list", "['vulkan/icd.d/nvidia_icd.json', 'OpenCL/vendors/nvidia.icd']"),
        (
            "nvi_bin_list",
            "['nvidia-bug-report.sh', 'nvidia-cuda-mps-control', 'nvidia-cuda-mps-server', 'nvidia-debugdump', 'nvidia-installer', 'nvidia-persistenced', 'nvidia-settings', 'nvidia-smi', 'nvidia-uninstall', 'nvidia-xconfig']"
        ),
        (
            "nvi_lib_list",
            "['libOpenCL.', 'libcuda.', 'libnvcuvid.', 'libnvidia-cfg.', 'libnvidia-compiler.', 'libnvidia-encode.', 'libnvidia-fatbinaryloader.', 'libnvidia-fbc.', 'libnvidia-ifr.', 'libnvidia-ml.', 'libnvidia-opencl.', 'libnvidia-ptxjitcompiler.', 'libnvidia-tls.', 'tls/libnvidia-tls.']"
        ),
        ("nvi_dev_list", "['/dev/nvidia']"),
    ]

    static let environmentKeys: [(String, String)] = [
        ("UDOCKER_DIR", "topdir"), ("UDOCKER_BIN", "bindir"), ("UDOCKER_LIB", "libdir"),
        ("UDOCKER_DOC", "docdir"), ("UDOCKER_REPOS", "reposdir"), ("UDOCKER_LAYERS", "layersdir"),
        ("UDOCKER_CONTAINERS", "containersdir"), ("UDOCKER_TMP", "tmpdir"),
        ("UDOCKER_KEYSTORE", "keystore"), ("UDOCKER_TARBALL", "tarball"), ("UDOCKER_TARBALL_SHA256", "tarball_sha256"),
        ("UDOCKER_LOGLEVEL", "verbose_level"), ("UDOCKER_INDEX", "dockerio_index_url"),
        ("UDOCKER_REGISTRY", "dockerio_registry_url"),
        ("UDOCKER_DEFAULT_EXECUTION_MODE", "override_default_execution_mode"),
        ("UDOCKER_FAKECHROOT_SO", "fakechroot_so"), ("UDOCKER_FAKECHROOT_LIBC", "fakechroot_libc"),
        ("UDOCKER_USE_PROOT_EXECUTABLE", "use_proot_executable"),
        ("UDOCKER_USE_RUNC_EXECUTABLE", "use_runc_executable"),
        ("UDOCKER_USE_SINGULARITY_EXECUTABLE", "use_singularity_executable"),
        ("UDOCKER_USE_PATCHELF_EXECUTABLE", "use_patchelf_executable"),
        ("UDOCKER_JOB_ENV_PREFIXES", "job_env_prefixes"),
        ("UDOCKER_TRANSFER_STALL_TIMEOUT", "transfer_stall_timeout"), ("UDOCKER_TRANSFER_MIN_RATE", "transfer_min_rate"),
        ("UDOCKER_TRANSFER_RATE_WINDOW", "transfer_rate_window"), ("UDOCKER_PULL_TIMEOUT", "pull_timeout"),
        ("UDOCKER_TRUSTED_REPOSITORY_OWNERS", "trusted_repository_owners"),
        ("UDOCKER_CONTAINER_STORAGE", "container_storage"),
    ]

    public struct Overrides: Sendable {
        public var configFile: String?
        public var repo: String?
        public var debug = false
        public var quiet = false
        public var insecure = false
        public init() {}
    }

    /// `tarball` for `version` without reading any configuration: `UDOCKER_TARBALL` when set, else
    /// the default when none of the files that could set it exists (`/etc/udocker.conf`,
    /// `~/.udocker/udocker.conf`, `$UDOCKER_DIR/udocker.conf`); nil when one may (then read them).
    static func tarballWithoutReading() -> String? {
        if let v = getenv("UDOCKER_TARBALL"), v.pointee != 0 { return String(cString: v) }
        var files = ["/etc/udocker.conf"]
        files.append("\(getenv("HOME").map { String(cString: $0) } ?? FileInfo.homeDirectory())/.udocker/udocker.conf")
        if let dir = getenv("UDOCKER_DIR"), dir.pointee != 0 { files.append("\(String(cString: dir))/udocker.conf") }
        let absent = files.allSatisfy { access($0, F_OK) != 0 && errno == ENOENT }
        return absent ? udockerToolsURLs : nil
    }

    public init(environment env: [String: String], overrides: Overrides) throws {
        for (k, v) in Self.udockerKeys + Self.defaults { set(k, v) }
        let home = env["HOME"] ?? FileInfo.homeDirectory()
        set("homedir", "\(home)/.udocker")
        set("topdir", "\(home)/.udocker")
        set("tmpdir", env["TMPDIR"] ?? "/tmp")

        try readFile("/etc/udocker.conf")
        try readFile("\(values["homedir"]!)/udocker.conf")
        if values["topdir"] != values["homedir"] { try readFile("\(values["topdir"]!)/udocker.conf") }
        if let dir = env["UDOCKER_DIR"], !dir.isEmpty, dir != values["topdir"] { try readFile("\(dir)/udocker.conf") }
        if let f = overrides.configFile {
            guard FileInfo.isRegularFile(f) else { throw StoreErrorMessage("config file not found: \(f)") }
            try readFile(f, explicit: true)
        }
        for (variable, key) in Self.environmentKeys {
            guard let v = env[variable], !v.isEmpty else { continue }
            if let type = Self.typedKeys[key], let problem = type.problem(v) {
                throw StoreErrorMessage("invalid \(variable)=\(v): \(problem)")
            }
            set(key, v)
        }
        if overrides.debug { set("verbose_level", "5") }
        if overrides.quiet { set("verbose_level", "1") }
        if overrides.insecure { set("http_insecure", "True") }
        if let repo = overrides.repo { set("topdir", repo) }
        // A relative keystore lives under ~/.udocker, as in udocker.
        if let ks = values["keystore"], !ks.hasPrefix("/") { set("keystore", "\(values["homedir"]!)/\(ks)") }
    }

    mutating func set(_ key: String, _ value: String) {
        if values[key] == nil { order.append(key) }
        values[key] = value
    }

    /// `[DEFAULT]`-section INI, as Python's ConfigParser reads it for udocker (`key = value` or
    /// `key: value`, `#`/`;` comments, indented continuation lines, keys of `[DEFAULT]` only).
    /// What udocker would crash on (not text, a key before any section header, a line that is not
    /// `key = value`, a value of the wrong type for a key we use) is an error naming the file, the
    /// line and the value; an unknown key, a key outside `[DEFAULT]` and, for the implicit
    /// locations, an unreadable file are warnings. `explicit`: the `--config` file.
    mutating func readFile(_ path: String, explicit: Bool = false) throws {
        guard let bytes = AtomicFile.read(path) else {
            let reason = errno
            if reason == ENOENT || reason == ENOTDIR { return }
            let text = String(cString: strerror(reason)).lowercased()
            if explicit { throw StoreErrorMessage("cannot read config file \(path): \(text)") }
            warnings.append("ignoring config file \(path): \(text)")
            return
        }
        filesRead.append(path)
        guard !bytes.contains(0), let text = String(validating: bytes, as: UTF8.self) else {
            throw StoreErrorMessage("config file \(path) is not a text file (udocker.conf is INI: [DEFAULT], then key = value lines)")
        }
        var section: String?
        var lastKey: String?
        for (n, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.trimmed(where: \.isBlank)
            let at = "\(path) line \(n + 1)"
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if let first = raw.first, first == " " || first == "\t", let key = lastKey, section == "DEFAULT" {
                set(key, self[key] + " " + line)  // a continuation line
                continue
            }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]") else { throw StoreErrorMessage("\(at): not a section header: \(line)") }
                section = String(line.dropFirst().dropLast())
                lastKey = nil
                continue
            }
            guard let sep = line.firstIndex(where: { $0 == "=" || $0 == ":" }) else {
                throw StoreErrorMessage("\(at): not a 'key = value' line: \(line)")
            }
            let key = line[..<sep].trimmed(where: \.isBlank).lowercased()
            var value = line[line.index(after: sep)...].trimmed(where: \.isBlank)
            if value.count >= 2, let f = value.first, f == "\"" || f == "'", value.last == f {
                value = String(value.dropFirst().dropLast())
            }
            guard let section else {
                throw StoreErrorMessage("\(at): '\(key)' before any section header (udocker.conf starts with [DEFAULT])")
            }
            guard section == "DEFAULT" else {
                warnings.append("\(at): ignoring \(key) in section [\(section)]: udocker reads only [DEFAULT]")
                continue
            }
            if let type = Self.typedKeys[key], let problem = type.problem(value) {
                throw StoreErrorMessage("\(at): invalid \(key) = \(value): \(problem)")
            }
            if !Self.isKnown(key) { warnings.append("\(at): unknown key \(key) = \(value) (not a udocker setting)") }
            set(key, value)
            lastKey = key
        }
    }

    /// udocker 1.3.17's keys and ours.
    static func isKnown(_ key: String) -> Bool {
        otherKnownKeys.contains(key) || defaults.contains { $0.0 == key } || udockerKeys.contains { $0.0 == key }
    }

    /// Problems with the configuration that did not stop it (unknown keys, unreadable implicit
    /// files), one line each, for the CLI to print once output is set up.
    public private(set) var warnings: [String] = []

    public subscript(_ key: String) -> String { values[key] ?? "" }

    public var verbosity: Int { Int(self["verbose_level"]) ?? 3 }
    public var topDirectory: String { self["topdir"] }
    public var tmpDirectory: String { self["tmpdir"].isEmpty ? "/tmp" : self["tmpdir"] }
    public var insecure: Bool { ["true", "1", "yes", "on"].contains(self["http_insecure"].lowercased()) }
    public var sysdirs: [String] { self["sysdirs_list"].split(separator: " ").map(String.init) }

    public func path(_ key: String) -> String? { self[key].isEmpty ? nil : self[key] }
}

/// A configuration error (`TypedError`, kind `.invalidArgument` unless given).
public struct StoreErrorMessage: TypedError {
    public let description: String
    public let kind: UDockerError.Kind
    public let cause: (any Error)?
    public init(_ d: String, kind: UDockerError.Kind = .invalidArgument, cause: (any Error)? = nil) {
        description = d; self.kind = kind; self.cause = cause
    }
}

extension Configuration {
    /// How `create` and `run` store a new container: `--storage`, else `container_storage`
    /// (`UDOCKER_CONTAINER_STORAGE` over the files, as for every key), else flat.
    func containerStorage(option: ContainerStorage?) throws -> ContainerStorage {
        try option ?? ContainerStorage(validating: self["container_storage"])
    }
}
