import ContainerModel
import CLinux
import FoundationEssentials
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// A step of a job as its launcher describes it to one task: which job and step, and how many of
/// its tasks run on this node (issue 25 item 2, docs/hpc.md "The ranks of a node in one
/// container instance").
public struct JobStep: Equatable, Sendable {
    public var job: String
    public var step: String
    public var localSize: Int

    /// From the launcher's variables: the job (`PMIX_NAMESPACE`, `SLURM_JOB_ID`, Open MPI's job
    /// id), the step (`SLURM_STEP_ID`, else 0) and the tasks of the step on this node
    /// (`OMPI_COMM_WORLD_LOCAL_SIZE`, `PMIX_LOCAL_SIZE`, or Slurm's tasks per node with
    /// `SLURM_LOCALID`). Nil when they do not say both which job and how many tasks.
    public static func detect(_ env: [String: String]) -> JobStep? {
        let job = ["PMIX_NAMESPACE", "SLURM_JOB_ID", "OMPI_MCA_ess_base_jobid", "OMPI_MCA_orte_ess_jobid"]
            .lazy.compactMap { env[$0] }.first { !$0.isEmpty }
        guard let job, let size = localSize(env), size > 0 else { return nil }
        return JobStep(job: job, step: env["SLURM_STEP_ID"] ?? "0", localSize: size)
    }

    static func localSize(_ env: [String: String]) -> Int? {
        for key in ["OMPI_COMM_WORLD_LOCAL_SIZE", "PMIX_LOCAL_SIZE"] {
            if let n = env[key].flatMap({ Int($0) }) { return n }
        }
        guard env["SLURM_STEP_ID"] != nil, env["SLURM_LOCALID"] != nil else { return nil }
        if env["SLURM_STEP_NUM_NODES"] == "1", let n = env["SLURM_STEP_NUM_TASKS"].flatMap({ Int($0) }) { return n }
        guard let spec = env["SLURM_STEP_TASKS_PER_NODE"] ?? env["SLURM_TASKS_PER_NODE"] else { return nil }
        return tasksOnNode(spec, node: env["SLURM_NODEID"].flatMap { Int($0) } ?? 0)
    }

    /// Slurm's compressed list of tasks per node (`2(x3),1`): the count of node `node`.
    static func tasksOnNode(_ spec: String, node: Int) -> Int? {
        var index = 0
        for part in spec.split(separator: ",") {
            let pieces = part.split(separator: "(")
            guard let count = pieces.first.flatMap({ Int($0) }) else { return nil }
            var repeats = 1
            if pieces.count == 2 {
                guard pieces[1].hasPrefix("x"), pieces[1].hasSuffix(")"), let r = Int(pieces[1].dropFirst().dropLast()) else { return nil }
                repeats = r
            }
            if node < index + repeats { return count }
            index += repeats
        }
        return nil
    }

    /// The step whose container instance this task joins: `--join=no` never, `--join=yes`
    /// whenever the variables name a step, automatically when the node runs more than one of
    /// its tasks.
    public static func toJoin(_ request: Bool?, environment env: [String: String]) -> JobStep? {
        guard request != false, let step = detect(env) else { return nil }
        return request == true || step.localSize > 1 ? step : nil
    }

    /// `--join=yes` outside a job step.
    public static let notAStep =
        "--join=yes: this is not a task of a job step: no job id (PMIX_NAMESPACE, SLURM_JOB_ID) or no count "
        + "of the step's tasks on this node (OMPI_COMM_WORLD_LOCAL_SIZE, PMIX_LOCAL_SIZE, SLURM_STEP_NUM_TASKS with SLURM_LOCALID)"
}

/// The rendezvous of the ranks of one job step on this node: a directory
/// `udocker-join-<uid>/<digest of job, step, container, identity, host name and binds>` in the run directory, 0700 and the user's own,
/// every file in it opened beneath its descriptor with no symlink followed (another user can
/// write to `/tmp`). Files: `leader` (`<pid> <start time>` of the rank that sets up, made with
/// `link`, so exactly one rank wins), `state` (`ready <holder pid> <start time>` or
/// `failed <message>`, written and renamed), `joined` (one byte per rank that entered).
final class JobJoin {
    let step: JobStep
    let parent: Int32
    let name: String
    let directory: Int32
    let path: String
    /// `UDOCKER_JOIN_TIMEOUT` (seconds, default 30): how long a rank waits for the set-up, and
    /// how long the holder waits for the ranks.
    let timeout: Double

    /// The first of `$XDG_RUNTIME_DIR`, `$TMPDIR` that is a directory here, else `/tmp` (srun
    /// passes on the submitting shell's variables: the login node's `/run/user/<uid>` may not
    /// exist on the compute node).
    static func runDirectory(_ env: [String: String]) -> String {
        for key in ["XDG_RUNTIME_DIR", "TMPDIR"] {
            var st = stat()
            if let v = env[key], v.hasPrefix("/"), stat(v, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR { return v }
        }
        return "/tmp"
    }

    static func timeout(_ env: [String: String]) -> Double {
        // At most a day (a number the holder's millisecond count holds).
        env["UDOCKER_JOIN_TIMEOUT"].flatMap { Double($0) }.flatMap { $0 > 0 && $0.isFinite ? min($0, 86400) : nil } ?? 30
    }

    static func failure(_ message: String) -> EngineError { EngineError(.io, message, exitStatus: 1) }

    /// The first rank's set-up failed or it ended: `cannotStart`, as its own error, so that
    /// where user namespaces do not work at all every rank falls back as the first one did.
    static func leaderFailure(_ message: String) -> EngineError { EngineError(.cannotStart, message, exitStatus: 1) }

    /// Opens (creating) the rendezvous of `step` for this container and identity.
    init(step: JobStep, container: String, uid: UInt32, gid: UInt32, layout: String, environment env: [String: String]) throws {
        self.step = step
        timeout = Self.timeout(env)
        let base = Self.runDirectory(env)
        let mine = "udocker-join-\(getuid())"
        // The node's name too: a run directory on a shared filesystem (TMPDIR in a home) must not
        // send the ranks of another node to this node's holder.
        var host = [CChar](repeating: 0, count: 256)
        _ = gethostname(&host, host.count - 1)
        let node = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let key = [step.job, step.step, container, "\(uid):\(gid)", node, layout].joined(separator: "\u{0}")
        name = String(Digest.sha256(of: Array(key.utf8)).hex.prefix(24))
        path = base + "/" + mine + "/" + name
        let top = Glibc.open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard top >= 0 else { throw Self.failure("cannot open the run directory \(base) for the job step: \(Self.reason())") }
        defer { close(top) }
        parent = try Self.ownDirectory(top, mine, shown: base + "/" + mine)
        do {
            var dir = try Self.ownDirectory(parent, name, shown: path)
            if Self.isStale(dir, timeout: timeout) {
                // An earlier job with the same key that never finished: set aside and start anew.
                let aside = "\(name).stale.\(getpid())"
                close(dir)
                if renameat(parent, name, parent, aside) == 0 { Self.removeDirectory(parent, aside) }
                dir = try Self.ownDirectory(parent, name, shown: path)
            }
            directory = dir
        } catch {
            close(parent)
            throw error
        }
    }

    deinit {
        close(directory)
        close(parent)
    }

    static func reason() -> String { String(cString: strerror(errno)) }

    /// `name` beneath `dirfd`, made 0700 if missing; refused unless a real directory of ours
    /// that nobody else can write.
    static func ownDirectory(_ dirfd: Int32, _ name: String, shown: String) throws -> Int32 {
        if mkdirat(dirfd, name, 0o700) != 0 && errno != EEXIST {
            throw failure("cannot create the job step's rendezvous \(shown): \(reason())")
        }
        let fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw failure("cannot open the job step's rendezvous \(shown): \(reason())") }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_uid == getuid(), st.st_mode & 0o077 == 0 else {
            close(fd)
            throw failure("the job step's rendezvous \(shown) is not a private directory of yours; remove it")
        }
        return fd
    }

    /// A `leader` older than twice the timeout (and two minutes): no rank of a live step waits that long.
    static func isStale(_ dirfd: Int32, timeout: Double) -> Bool {
        var st = stat()
        guard fstatat(dirfd, "leader", &st, AT_SYMLINK_NOFOLLOW) == 0 else { return false }
        return Double(time(nil) - st.st_mtim.tv_sec) > max(2 * timeout, 120)
    }

    static func removeDirectory(_ parent: Int32, _ name: String) {
        let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd >= 0 {
            if let dir = fdopendir(fd) {
                while let entry = readdir(dir) {
                    let n = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                    if n != "." && n != ".." { unlinkat(fd, n, 0) }
                }
                closedir(dir)
            } else {
                close(fd)
            }
        }
        unlinkat(parent, name, AT_REMOVEDIR)
    }

    // MARK: files

    func read(_ file: String) -> String? {
        let fd = openat(directory, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 65536 {
            let n = Glibc.read(fd, &buf, buf.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes += buf[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes `text` to a temporary file; `finish` moves it into place (rename or link).
    func write(_ text: String, finish: (String) -> Int32) throws -> Int32 {
        let tmp = ".tmp.\(getpid())"
        unlinkat(directory, tmp, 0)
        let fd = openat(directory, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Self.failure("cannot write in the job step's rendezvous \(path): \(Self.reason())") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == bytes.count else {
            unlinkat(directory, tmp, 0)
            throw Self.failure("cannot write in the job step's rendezvous \(path): \(Self.reason())")
        }
        let r = finish(tmp)
        let saved = errno
        unlinkat(directory, tmp, 0)
        errno = saved
        return r
    }

    /// True for the rank that sets the container up (the first to link `leader`).
    func claim() throws -> Bool {
        let me = "\(getpid()) \(Self.startTime(getpid()) ?? 0)\n"
        let r = try write(me) { linkat(directory, $0, directory, "leader", 0) }
        if r == 0 { return true }
        guard errno == EEXIST else { throw Self.failure("cannot write in the job step's rendezvous \(path): \(Self.reason())") }
        return false
    }

    /// The leader's outcome, for the others: `ready <pid> <start>` or `failed <message>`.
    func publish(_ state: String) {
        _ = try? write(state + "\n") { renameat(directory, $0, directory, "state") }
    }

    /// A process's start time (`/proc/<pid>/stat` field 22): a PID reused meanwhile has another.
    static func startTime(_ pid: pid_t) -> UInt64? {
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 1024)
        let n = Glibc.read(fd, &buf, buf.count)
        guard n > 0 else { return nil }
        let text = String(decoding: buf[0..<n], as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state); the start time is field 22.
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }

    static func parseProcess(_ text: Substring) -> (pid: pid_t, start: UInt64)? {
        let parts = text.split(separator: " ")
        guard parts.count >= 2, let pid = pid_t(parts[0]), pid > 0, let start = UInt64(parts[1]) else { return nil }
        return (pid, start)
    }

    static func alive(_ p: (pid: pid_t, start: UInt64)) -> Bool { startTime(p.pid) == p.start }

    /// Waits (bounded by the timeout) for the leader's outcome; the holder's pid and start time.
    func awaitHolder() throws -> (pid: pid_t, start: UInt64) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let deadline = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9 + timeout
        var leader: (pid: pid_t, start: UInt64)?
        var leaderGone = false
        while true {
            if let state = read("state"), state.hasSuffix("\n") {
                let line = state.dropLast()
                if line.hasPrefix("ready "), let holder = Self.parseProcess(line.dropFirst(6)) { return holder }
                let why = line.hasPrefix("failed ") ? String(line.dropFirst(7)) : "unreadable \(path)/state"
                throw Self.leaderFailure("the first rank of this job step could not set up the container: \(why)")
            }
            if leaderGone {
                let who = leader.map { " (pid \($0.pid))" } ?? ""
                throw Self.leaderFailure("the first rank of this job step\(who) ended before it set up the container; see its error")
            }
            if leader == nil, let text = read("leader"), text.hasSuffix("\n") { leader = Self.parseProcess(text.dropLast()) }
            // Gone: look at `state` once more (it may have written it just before ending).
            if let l = leader, !Self.alive(l) { leaderGone = true; continue }
            clock_gettime(CLOCK_MONOTONIC, &now)
            if Double(now.tv_sec) + Double(now.tv_nsec) / 1e9 >= deadline {
                throw Self.failure(
                    "timed out after \(Int(timeout)) s waiting for the first rank of this job step to set up the container "
                        + "(\(path)/state; UDOCKER_JOIN_TIMEOUT)")
            }
            var nap = timespec(tv_sec: 0, tv_nsec: 10_000_000)
            nanosleep(&nap, nil)
        }
    }

    /// Opens the holder's namespaces (checking that its PID was not reused) and checks in; the
    /// last rank to check in removes the rendezvous.
    func enter(_ holder: (pid: pid_t, start: UInt64)) throws -> (user: Int32, mount: Int32) {
        let user = open("/proc/\(holder.pid)/ns/user", O_RDONLY | O_CLOEXEC)
        let mount = open("/proc/\(holder.pid)/ns/mnt", O_RDONLY | O_CLOEXEC)
        // Checked after the opens: the descriptors name the holder's namespaces only if it still runs.
        guard user >= 0, mount >= 0, Self.alive(holder) else {
            if user >= 0 { close(user) }
            if mount >= 0 { close(mount) }
            throw Self.failure(
                "the container of this job step is gone (its holder, pid \(holder.pid), has ended: the ranks of a step "
                    + "must start within \(Int(timeout)) s of each other, UDOCKER_JOIN_TIMEOUT)")
        }
        let fd = openat(directory, "joined", O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if fd >= 0 {
            var one: UInt8 = 1
            _ = Glibc.write(fd, &one, 1)
            var st = stat()
            let last = fstat(fd, &st) == 0 && Int(st.st_size) >= step.localSize
            close(fd)
            if last { Self.removeDirectory(parent, name) }
        }
        return (user, mount)
    }
}

extension NativeEngine {
    /// A rank of a job step to join (`JobStep.toJoin`): the first rank starts the holder with
    /// `namespace` set up (its failure is published for the others, then thrown), every rank then
    /// enters the holder's namespaces. Returns the launch turned into a joining one.
    static func joinedLaunch(
        _ launch: Launch, step: JobStep, container: String, scratch: String, environment env: [String: String],
        messages: Messages
    ) throws -> Launch {
        guard let ns = launch.namespace else { return launch }
        var launch = launch
        // Ranks whose binds differ (`-v /scratch/$RANK:/out`) are not in one container: the
        // binds are part of the key, but for this run's own generated files (passwd, group…).
        let layout = ns.mounts.filter { m in !PathName.isUnder(m.source, scratch) }
            .map { "\($0.source):\($0.target):\($0.readOnly ? "ro" : "rw")" }
        let rendezvous = try JobJoin(
            step: step, container: container, uid: ns.insideUID, gid: ns.insideGID,
            layout: ((ns.overlay.map { [$0.options] } ?? []) + layout).joined(separator: "\n"), environment: env)
        if try rendezvous.claim() {
            let holder = ChildLaunch(path: "/", arguments: [], environment: [], namespace: ns)
            do {
                let pid = try holder.spawnHolder(
                    directory: rendezvous.directory, members: step.localSize, timeoutMS: Int(rendezvous.timeout * 1000))
                launch.cleanup.append {
                    var status: Int32 = 0
                    _ = waitpid(pid, &status, WNOHANG)
                }
                guard let start = JobJoin.startTime(pid) else {
                    rendezvous.publish("failed its holder (pid \(pid)) ended at once")
                    throw JobJoin.failure("N1: the holder of this job step's container (pid \(pid)) ended at once")
                }
                rendezvous.publish("ready \(pid) \(start)")
                messages.verbose("N1: set up the job step's container in \(rendezvous.path), holder pid \(pid)")
            } catch let failure as ChildLaunch.Failure {
                let error = launch.startError?(failure) ?? EngineError(.cannotStart, "N1: \(failure.step)")
                rendezvous.publish("failed \(error.message)")
                throw error
            }
        }
        let holder = try rendezvous.awaitHolder()
        let fds = try rendezvous.enter(holder)
        messages.verbose("N1: joining the job step's container (holder pid \(holder.pid), \(step.localSize) ranks here)")
        launch.namespace = nil
        launch.join = fds
        launch.cleanup.append {
            close(fds.user)
            close(fds.mount)
        }
        return launch
    }
}
