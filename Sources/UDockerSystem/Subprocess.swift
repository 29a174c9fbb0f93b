#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Whole-buffer I/O on file descriptors (stdout/stderr, pipes), retried on EINTR.
public enum FileDescriptorIO {
    /// Writes all of `bytes` to `fd`; false when a write fails (e.g. EPIPE).
    @discardableResult
    public static func write(_ fd: Int32, _ bytes: some Collection<UInt8>) -> Bool {
        let array = Array(bytes)
        return array.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += n
            }
            return true
        }
    }

    @discardableResult
    public static func write(_ fd: Int32, _ text: String) -> Bool { write(fd, Array(text.utf8)) }

    /// Reads `fd` to its end (at most `limit` bytes are kept; the rest is read and dropped).
    public static func readToEnd(_ fd: Int32, limit: Int = .max) -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; break }
            if n == 0 { break }
            if out.count < limit { out.append(contentsOf: buf[0..<min(n, limit - out.count)]) }
        }
        return out
    }
}

/// A helper program run to completion with its output captured (`du`, `ldd`, `tool --version`,
/// a docker-credential helper): `posix_spawn`, default signal dispositions and an empty signal
/// mask in the child, stdin from `input` (or /dev/null), stdout captured, stderr discarded or
/// merged into the capture.
public enum Subprocess {
    public enum ErrorOutput: Sendable { case discard, capture }

    public struct Result: Sendable {
        /// The exit status, or nil when the program was killed by a signal.
        public var exitStatus: Int32?
        public var output: [UInt8]
        public var succeeded: Bool { exitStatus == 0 }
        public var text: String { String(decoding: output, as: UTF8.self) }
    }

    /// Runs `path` with `arguments` (argv[0] is `path`). `environment` nil inherits ours.
    /// `timeout` (seconds): the program is sent SIGTERM when it has not finished by then.
    /// Throws `SystemError` when it cannot be started.
    public static func run(
        _ path: String, _ arguments: [String], environment: [String: String]? = nil, input: [UInt8]? = nil,
        errorOutput: ErrorOutput = .discard, outputLimit: Int = .max, timeout: Double? = nil
    ) throws -> Result {
        var outPipe: [Int32] = [-1, -1], inPipe: [Int32] = [-1, -1]
        try syscall("pipe") { pipe(&outPipe) }
        defer { for fd in outPipe + inPipe where fd >= 0 { close(fd) } }
        if input != nil { try syscall("pipe") { pipe(&inPipe) } }
        for fd in outPipe + inPipe where fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if input != nil {
            posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        switch errorOutput {
        case .capture: posix_spawn_file_actions_adddup2(&actions, outPipe[1], 2)
        case .discard: posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none); sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let env = environment.map { $0.map { "\($0.key)=\($0.value)" } }
        let cArgs = ([path] + arguments).map { strdup($0) }
        let cEnv = env.map { $0.map { strdup($0) } }
        defer { for p in cArgs + (cEnv ?? []) { free(p) } }
        var pid = pid_t()
        let rc = (cArgs + [nil]).withUnsafeBufferPointer { argv in
            if let cEnv {
                return (cEnv + [nil]).withUnsafeBufferPointer { envp in
                    posix_spawn(&pid, path, &actions, &attr, argv.baseAddress!, envp.baseAddress!)
                }
            }
            return posix_spawn(&pid, path, &actions, &attr, argv.baseAddress!, environ)
        }
        guard rc == 0 else { throw SystemError("run", path: path, errno: rc) }
        close(outPipe[1]); outPipe[1] = -1
        if let input {
            close(inPipe[0]); inPipe[0] = -1
            Self.writeIgnoringSIGPIPE(inPipe[1], input)
            close(inPipe[1]); inPipe[1] = -1
        }
        let output = read(outPipe[0], from: pid, limit: outputLimit, timeout: timeout)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = status & 0x7f == 0
        return Result(exitStatus: exited ? (status >> 8) & 0xff : nil, output: output)
    }

    /// Reads until EOF; past `timeout` the child gets SIGTERM (once) and the read continues.
    private static func read(_ fd: Int32, from pid: pid_t, limit: Int, timeout: Double?) -> [UInt8] {
        guard let timeout else { return FileDescriptorIO.readToEnd(fd, limit: limit) }
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let end = Double(deadline.tv_sec) + Double(deadline.tv_nsec) / 1e9 + timeout
        var out: [UInt8] = [], buf = [UInt8](repeating: 0, count: 65536), killed = false
        while true {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let left = end - (Double(now.tv_sec) + Double(now.tv_nsec) / 1e9)
            if left <= 0 && !killed { kill(pid, SIGTERM); killed = true }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, killed ? -1 : Int32(min(left * 1000 + 1, 60_000)))
            if r < 0 { if errno == EINTR { continue }; break }
            if r == 0 { continue }
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR || errno == EAGAIN { continue }; break }
            if n == 0 { break }
            if out.count < limit { out.append(contentsOf: buf[0..<min(n, limit - out.count)]) }
        }
        return out
    }

    /// A child that exits without reading its stdin must not kill us with SIGPIPE.
    private static func writeIgnoringSIGPIPE(_ fd: Int32, _ bytes: [UInt8]) {
        var block = sigset_t(), old = sigset_t()
        sigemptyset(&block); sigaddset(&block, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &block, &old)
        FileDescriptorIO.write(fd, bytes)
        // Discard a SIGPIPE this write raised before unblocking it.
        var pending = sigset_t()
        sigpending(&pending)
        if sigismember(&pending, SIGPIPE) == 1 && sigismember(&old, SIGPIPE) == 0 {
            var zero = timespec()
            sigtimedwait(&block, nil, &zero)
        }
        pthread_sigmask(SIG_SETMASK, &old, nil)
    }
}
