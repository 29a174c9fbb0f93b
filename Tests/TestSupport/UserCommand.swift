import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a finished command left behind.
public struct CommandResult: Sendable, CustomStringConvertible {
    public let command: [String]
    /// Exit status; for a process killed by a signal, 128 + signal (shell convention).
    public let status: Int32
    public let stdout: String
    public let stderr: String
    public let timedOut: Bool

    public var succeeded: Bool { status == 0 && !timedOut }

    /// stdout split in lines, without the empty string after a final newline.
    public var stdoutLines: [String] { Self.lines(stdout) }
    public var stderrLines: [String] { Self.lines(stderr) }

    /// stderr lines that are not `Info:`/`Warning:`/`Debug:` messages nor blank.
    public var significantStderrLines: [String] {
        stderrLines.filter { line in
            let t = line.trimmingCharacters(in: .whitespaces)
            return !t.isEmpty && !t.hasPrefix("Info:") && !t.hasPrefix("Warning:") && !t.hasPrefix("Debug:")
        }
    }

    /// stderr lines starting with `Error:`.
    public var errorLines: [String] { stderrLines.filter { $0.hasPrefix("Error:") } }

    static func lines(_ s: String) -> [String] {
        var l = s.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if l.last == "" { l.removeLast() }
        return l
    }

    public var description: String {
        let cmd = command.map { $0.contains(" ") || $0.isEmpty ? "'\($0)'" : $0 }.joined(separator: " ")
        return """
            $ \(cmd)
            exit status: \(status)\(timedOut ? " (TIMED OUT, killed)" : "")
            --- stdout ---
            \(stdout.prefix(6000))
            --- stderr ---
            \(stderr.prefix(6000))
            """
    }
}

public struct UserCommandError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Runs a command as the unprivileged test user with an exact environment.
///
/// * As root: `setpriv --reuid=<uid> --regid=<gid> --clear-groups -- env -i K=V... cmd args`.
///   `setpriv` (util-linux) is used rather than `runuser`, because runuser resets HOME, SHELL,
///   USER and LOGNAME and goes through PAM.
/// * As any other user: `env -i K=V... cmd args` (the tests then run as that user).
///
/// The environment is exactly `environment` (nothing is inherited). stdout and stderr go to
/// files, not pipes, so a lingering grandchild (proot, a background `sleep`) can never block the
/// read. Foundation's Process makes the child a process-group leader; on timeout, and after the
/// command exits, that whole process group is killed with SIGKILL.
public struct UserCommand: Sendable {
    /// User name to switch to when running as root; nil or "root" = no switch.
    public var user: String?
    public var environment: [String: String]
    public var workingDirectory: String
    public var timeout: Duration

    public init(user: String?, environment: [String: String], workingDirectory: String, timeout: Duration = .seconds(300)) {
        self.user = user
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.timeout = timeout
    }

    /// uid and gid of a user name.
    public static func ids(of user: String) throws -> (uid: uid_t, gid: gid_t) {
        guard let pw = getpwnam(user) else { throw UserCommandError("no such user: \(user)") }
        return (pw.pointee.pw_uid, pw.pointee.pw_gid)
    }

    /// Whether commands are switched to another user (the tests run as root).
    public var switchesUser: Bool {
        geteuid() == 0 && user != nil && user != "root" && user != ""
    }

    public func run(
        _ executable: String, _ arguments: [String] = [], stdin: String? = nil, timeout: Duration? = nil
    ) async throws -> CommandResult {
        let scratch = try Self.makeScratch()
        defer { try? FileManager.default.removeItem(atPath: scratch) }

        var argv: [String] = []
        if switchesUser, let user {
            let (uid, gid) = try Self.ids(of: user)
            argv += ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", "--"]
        }
        argv += ["/usr/bin/env", "-i"]
        argv += environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        argv.append(executable)
        argv += arguments

        let outPath = scratch + "/stdout", errPath = scratch + "/stderr", inPath = scratch + "/stdin"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        guard let out = FileHandle(forWritingAtPath: outPath), let err = FileHandle(forWritingAtPath: errPath) else {
            throw UserCommandError("cannot open capture files in \(scratch)")
        }
        defer { try? out.close(); try? err.close() }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory)
        process.environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        process.standardOutput = out
        process.standardError = err
        var input: FileHandle?
        if let stdin {
            _ = FileManager.default.createFile(atPath: inPath, contents: Data(stdin.utf8))
            input = FileHandle(forReadingAtPath: inPath)
            process.standardInput = input
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        defer { try? input?.close() }

        try process.run()
        let pid = process.processIdentifier
        let limit = timeout ?? self.timeout
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: limit)
        var timedOut = false
        while process.isRunning {
            if clock.now >= deadline {
                timedOut = true
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                break
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        process.waitUntilExit()
        // Leftovers of the session (daemons started by the command) must not outlive the test.
        kill(-pid, SIGKILL)

        let status: Int32 =
            process.terminationReason == .uncaughtSignal
            ? 128 + process.terminationStatus : process.terminationStatus
        let stdoutText = String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: outPath))) ?? Data(), as: UTF8.self)
        let stderrText = String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: errPath))) ?? Data(), as: UTF8.self)
        let shown = [executable] + arguments
        return CommandResult(command: shown, status: status, stdout: stdoutText, stderr: stderrText, timedOut: timedOut)
    }

    static func makeScratch() throws -> String {
        var template = Array("/tmp/udocker-e2e-capture-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw UserCommandError("mkdtemp failed: errno \(errno)") }
        return String(cString: p)
    }
}
