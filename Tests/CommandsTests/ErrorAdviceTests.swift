@testable import Commands
import Engines
import Glibc
import Store
import Testing
import UDockerSystem

/// The advice added to error lines about full disks, inodes and quotas (issue 15.7).
@Suite struct ErrorAdviceTests {
    let repo = "/home/u/.udocker"

    @Test func noSpaceSaysHowMuchIsFreeAndWhatToDo() {
        let line = ErrorAdvice.annotate(
            "write /home/u/.udocker/containers/x/ROOT/f: No space left on device", repository: repo,
            room: .init(freeBytes: 3 << 20, freeInodes: 100, totalInodes: 1000))
        #expect(line.contains("3 MiB free on the filesystem of /home/u/.udocker"), "\(line)")
        #expect(line.contains("udocker rmi --prune") && line.contains("UDOCKER_DIR"), "\(line)")
    }

    @Test func noInodesIsNamed() {
        let line = ErrorAdvice.annotate(
            "create f: No space left on device", repository: repo,
            room: .init(freeBytes: 1 << 30, freeInodes: 0, totalInodes: 1000))
        #expect(line.contains("no inodes (files) left"), "\(line)")
        let after = ErrorAdvice.annotate(
            "create f: No space left on device", repository: repo,
            room: .init(freeBytes: 1 << 30, freeInodes: 40, totalInodes: 1000))
        #expect(after.contains("1024 MiB and 40 inodes free now") && after.contains("ran out of inodes"), "\(after)")
    }

    @Test func quotaSaysHowToSeeIt() {
        let line = ErrorAdvice.annotate("write f: Disk quota exceeded", repository: repo, room: nil)
        #expect(line.contains("quota -s") && line.contains("lfs quota"), "\(line)")
    }

    @Test func pullAdviceIsNotRepeated() {
        let pull =
            "no space left on device in /l while downloading b (5 bytes); its partial download was removed; other interrupted downloads hold 9 bytes there: 'udocker rmi --prune' removes them"
        let line = ErrorAdvice.annotate(pull, repository: repo, room: .init(freeBytes: 0, freeInodes: 5, totalInodes: 9))
        #expect(line == pull + " (0 MiB free on the filesystem of \(repo))", "\(line)")
    }

    @Test func otherErrorsAreUnchanged() {
        #expect(ErrorAdvice.annotate("repository not found: x", repository: repo, room: nil) == "repository not found: x")
    }

    /// A full disk is recognised by the errno of the root cause, through the wrapping layers,
    /// whatever the message says (issue 24 step 3).
    @Test func fullDiskIsRecognisedByTheErrnoOfTheRootCause() {
        let noSpace = StoreError(
            "layer sha256:ab: cannot extract",
            cause: UDockerError(SystemError("write", path: "/r/f", errno: ENOSPC), context: "layer sha256:ab"))
        let root = ErrorAdvice.rootCause(EngineError(.io, "outer", cause: noSpace))
        #expect((root as? SystemError)?.errno == ENOSPC)
        let line = ErrorAdvice.annotate("layer sha256:ab: cannot extract", rootCause: root, repository: repo, room: nil)
        #expect(line.hasSuffix("or set UDOCKER_DIR to a filesystem with room"), "\(line)")
        let quota = ErrorAdvice.rootCause(CommandFailure("cannot write", cause: SystemError("write", errno: EDQUOT)))
        let quotaLine = ErrorAdvice.annotate("cannot write", rootCause: quota, repository: repo, room: nil)
        #expect(quotaLine.contains("quota -s"), "\(quotaLine)")
        // Another errno decides too: no advice, even if some text in the message looks like it.
        let other = SystemError("read", errno: EIO)
        let text = "cannot read: No space left on device (as the peer said)"
        #expect(ErrorAdvice.annotate(text, rootCause: other, repository: repo, room: nil) == text)
    }
}

/// Exit statuses come from one table (`UDocker.exitStatus(for:)`) and are those of before:
/// engine errors 2 (1 for a missing tool) unless given, everything else 1 unless given.
@Suite struct ExitStatusTests {
    struct Plain: Error {}

    static let cases: [(String, any Error, Int32)] = [
        ("engine invalid argument", EngineError(.invalidArgument, "bad -v"), 2),
        ("engine cannot start", EngineError(.cannotStart, "exec failed"), 2),
        ("engine io", EngineError(.io, "cannot lock"), 2),
        ("engine unsupported", EngineError.unsupportedMode(.F4), 2),
        ("engine tool not found", EngineError(.toolNotFound, "proot not found"), 1),
        ("engine with its own status", EngineError(.invalidArgument, "overlay needs N1", exitStatus: 1), 1),
        ("command failure", CommandFailure("container not found"), 1),
        ("command failure with status", CommandFailure("stopped", status: 3), 3),
        ("store error", StoreError("image not found", kind: .notFound), 1),
        ("configuration error", StoreErrorMessage("config file not found: x"), 1),
        ("archive error", UDockerError(.truncated, "truncated tar archive"), 1),
        ("archive io error", UDockerError(SystemError("write", errno: ENOSPC)), 1),
        ("any other error", Plain(), 1),
    ]

    @Test(arguments: cases.indices) func statusOf(_ i: Int) {
        let (name, error, status) = Self.cases[i]
        #expect(UDocker.exitStatus(for: error) == status, "\(name)")
    }
}
