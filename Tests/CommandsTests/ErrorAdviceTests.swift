@testable import Commands
import Testing

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
}
