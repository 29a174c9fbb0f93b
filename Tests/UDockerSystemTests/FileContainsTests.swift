import Testing
import UDockerSystem
import TestSupport

/// `FileInfo.contents(of:contain:)`, the probe the P and F modes make of their tools on every run
/// (`--kill-on-exit` in proot, `FAKECHROOT_DIR_MAP` in libfakechroot, `--argv0` in ld.so).
@Suite struct FileContainsTests {
    @Test("a needle at the start, in the middle, at the end, across 64 KB reads, or absent")
    func positions() throws {
        let tmp = try TemporaryDirectory(prefix: "file-contains")
        var bytes = [UInt8](repeating: 0x41, count: 200_000)
        let needle = Array("FAKECHROOT_DIR_MAP".utf8)
        let file = tmp.sub("lib.so")
        for at in [0, 100_000, 65_536 - 5, bytes.count - needle.count] {
            var b = bytes
            b.replaceSubrange(at..<at + needle.count, with: needle)
            try AtomicFile.write(b, to: file)
            #expect(FileInfo.contents(of: file, contain: "FAKECHROOT_DIR_MAP"), "at \(at)")
            #expect(!FileInfo.contents(of: file, contain: "FAKECHROOT_DIR_MAPX"), "at \(at)")
        }
        bytes[1000] = 0x46  // a prefix of the needle only
        try AtomicFile.write(bytes, to: file)
        #expect(!FileInfo.contents(of: file, contain: "FAKECHROOT_DIR_MAP"))
        #expect(!FileInfo.contents(of: tmp.sub("missing"), contain: "x"))
        #expect(FileInfo.contains([], []) && !FileInfo.contains([], [1]) && FileInfo.contains([1, 2, 3], [2, 3]))
    }
}
