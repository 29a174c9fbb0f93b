import ContainerModel
import CLinux
import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// Standard I/O for the engine's child; by default inherited untouched (tty included).
public struct StandardIO: Sendable {
    public var input: Int32?
    public var output: Int32?
    public var error: Int32?
    public init(input: Int32? = nil, output: Int32? = nil, error: Int32? = nil) {
        self.input = input; self.output = output; self.error = error
    }
    public static let inherit = StandardIO()
}

/// A launch request for `cl_spawn` (CLinux/nsexec.c).
struct ChildLaunch {
    var path: String
    var arguments: [String]
    var environment: [String]
    var cwd: String?
    var cpus: [Int]?
    var io: StandardIO = .inherit
    /// A descriptor (> 2) the command inherits: a job's `PMI_FD` (`ExecutionPlan.jobDescriptor`).
    var keepDescriptor: Int32?
    /// N1: the namespace part.
    struct Namespace {
        var root: String
        var insideUID: UInt32, insideGID: UInt32, hostUID: UInt32, hostGID: UInt32
        var mounts: [BindMount]
        /// An overlay container: overlayfs is mounted on `root` instead of binding it onto itself.
        var overlay: ContainerInstance.OverlayMount?
    }
    var namespace: Namespace?
    /// N1, a rank of a joined job step: the holder's user and mount namespaces (`JobJoin`),
    /// entered instead of `namespace`.
    var join: (user: Int32, mount: Int32)?

    struct Failure: Error { var errno: Int32; var step: String }

    /// Starts the child; throws `Failure` with the failing step (in the child or here).
    func spawn() throws(Failure) -> pid_t {
        try withConfiguration { cfg, err in cl_spawn(&cfg, &err) }
    }

    /// Starts the holder of a joined job step: `namespace` set up, then kept until `members`
    /// ranks checked in at `directory` (see `cl_hold_namespaces`) or `timeoutMS` passed.
    func spawnHolder(directory: Int32, members: Int, timeoutMS: Int) throws(Failure) -> pid_t {
        try withConfiguration { cfg, err in cl_hold_namespaces(&cfg, directory, Int32(members), timeoutMS, &err) }
    }

    private func withConfiguration(
        _ start: (inout cl_exec_config_t, inout cl_exec_error_t) -> pid_t
    ) throws(Failure) -> pid_t {
        var arena = CStringArena()
        let argv = arena.array(arguments)
        let envp = arena.array(environment)
        let cpath = arena.string(path)
        let ccwd = cwd.map { arena.string($0) }
        var cfg = cl_exec_config_t()
        cfg.path = UnsafePointer(cpath)
        cfg.argv = UnsafePointer(argv)
        cfg.envp = UnsafePointer(envp)
        cfg.cwd = ccwd.map { UnsafePointer($0) }
        cfg.stdio_fds = (io.input ?? -1, io.output ?? -1, io.error ?? -1)
        cfg.keep_fd = keepDescriptor ?? -1
        let cpuBuffer = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, cpus?.count ?? 0))
        defer { cpuBuffer.deallocate() }
        if let cpus, !cpus.isEmpty {
            for (i, c) in cpus.enumerated() { cpuBuffer[i] = Int32(c) }
            cfg.cpus = UnsafePointer(cpuBuffer)
            cfg.ncpus = Int32(cpus.count)
        }
        let mountBuffer = UnsafeMutablePointer<cl_mount_t>.allocate(capacity: max(1, namespace?.mounts.count ?? 0))
        defer { mountBuffer.deallocate() }
        if let ns = namespace {
            if let o = ns.overlay {
                cfg.overlay_dir = UnsafePointer(arena.string(o.cacheDirectory))
                cfg.overlay_options = UnsafePointer(arena.string(o.options))
            }
            cfg.use_userns = 1
            cfg.root = UnsafePointer(arena.string(ns.root))
            cfg.inside_uid = ns.insideUID; cfg.inside_gid = ns.insideGID
            cfg.host_uid = ns.hostUID; cfg.host_gid = ns.hostGID
            for (i, m) in ns.mounts.enumerated() {
                mountBuffer[i] = cl_mount_t(
                    source: UnsafePointer(arena.string(m.source)),
                    target: UnsafePointer(arena.string(m.target)), read_only: m.readOnly ? 1 : 0)
            }
            cfg.mounts = UnsafePointer(mountBuffer)
            cfg.nmounts = Int32(ns.mounts.count)
        }
        if let join {
            cfg.join = 1
            cfg.join_user_fd = join.user
            cfg.join_mnt_fd = join.mount
        }
        var err = cl_exec_error_t()
        let pid = start(&cfg, &err)
        arena.free()
        if pid < 0 {
            let step = withUnsafeBytes(of: err.step) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            throw Failure(errno: err.error_number, step: step)
        }
        return pid
    }

    /// Waits while forwarding signals; returns the exit status (128+signal when killed). With
    /// `hold`, the pid goes into that held slot (a signal parked there is delivered first).
    static func wait(_ pid: pid_t, hold: ForwardingHold? = nil) -> Int32 {
        var status: Int32 = 0
        let r = hold.map { $0.wait(pid, &status) } ?? cl_wait_forwarding(pid, &status)
        if r != 0 { return 255 }
        if status & 0x7f == 0 { return (status >> 8) & 0xff }  // WIFEXITED
        if (status & 0x7f) != 0x7f { return 128 + (status & 0x7f) }  // WIFSIGNALED
        return 255
    }
}

/// C strings that live until `free()`.
struct CStringArena {
    private var strings: [UnsafeMutablePointer<CChar>] = []
    private var arrays: [UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>] = []

    mutating func string(_ s: String) -> UnsafeMutablePointer<CChar> {
        let p = strdup(s)!
        strings.append(p)
        return p
    }
    mutating func array(_ list: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> {
        let a = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: list.count + 1)
        for (i, s) in list.enumerated() { a[i] = string(s) }
        a[list.count] = nil
        arrays.append(a)
        return a
    }
    mutating func free() {
        for s in strings { Glibc.free(s) }
        for a in arrays { a.deallocate() }
        strings.removeAll(); arrays.removeAll()
    }
}

/// The engines' messages by level (udocker `msg.py`: 0 ERR, 1 MSG, 2 WAR, 3 INF, 4 VER, 5 DBG),
/// sent to the process's output channel (`UDockerSystem.Output`), which the command line renders.
struct Messages {
    var verbosity: Int
    func write(_ text: String) { Output().text(text) }
    func warning(_ text: String) { if verbosity >= 2 { Output().warning(text) } }
    func info(_ text: String) { if verbosity >= 3 { Output().info(text) } }
    func verbose(_ text: String) { if verbosity >= 4 { Output().verbose(text) } }
}

/// A signal-forwarding slot held for a process that another one starts (R1: the command that
/// `runc run --detach` leaves running). Taken before the runtime starts, so a signal between the
/// runtime's exit and the wait for the command is parked for the command instead of killing
/// udocker with the container still running; given up by `wait` or, if never used, `drop`.
final class ForwardingHold: @unchecked Sendable {
    private let lock = ConditionLock()
    private var slot: Int32?

    init() { slot = cl_forward_hold() }

    func wait(_ pid: pid_t, _ status: inout Int32) -> Int32 {
        lock.lock()
        guard let s = slot else {
            lock.unlock()
            return cl_wait_forwarding(pid, &status)
        }
        slot = nil
        lock.unlock()
        return cl_wait_held(s, pid, &status)
    }

    func drop() {
        lock.lock(); defer { lock.unlock() }
        if let s = slot { cl_forward_drop(s); slot = nil }
    }
}
