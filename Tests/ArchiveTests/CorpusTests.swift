import Foundation
import Testing
import Archive
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Corpus cases of issue 10 not covered elsewhere in ArchiveTests (the map is in
/// docs/trust-boundaries.md): hostile PAX times must not trap the extractor.
@Suite struct ArchiveCorpusTests {
    /// Before the fix, `-9223372036854775808.5` trapped (a second was borrowed from Int64.min).
    @Test(arguments: [
        "-9223372036854775808.5", "-9223372036854775808", "9223372036854775807.999999999",
        "-1.5", "99999999999999999999", "1.", ".5", "-", "1.2.3", "0x10", "",
    ])
    func hostilePAXTimesNeverTrap(_ time: String) throws {
        let f = try Fixture()
        var t = TarBuilder()
        t.entry(name: Array("d/".utf8), type: TarBuilder.directory, extraPAX: [("mtime", Array(time.utf8))])
        t.entry(name: Array("d/f".utf8), type: TarBuilder.regular, content: Array("x".utf8), extraPAX: [("mtime", Array(time.utf8))])
        t.entry(name: Array("l".utf8), type: TarBuilder.symlink, link: Array("d/f".utf8), extraPAX: [("mtime", Array(time.utf8))])
        try f.extract(t.archive)
        #expect((try? String(contentsOfFile: f.r("d/f"), encoding: .utf8)) == "x")
        #expect(f.outsideIntact())
    }

    /// A negative time with a fraction borrows a second, exactly as GNU tar stores it.
    @Test func negativeFractionalPAXTime() throws {
        let f = try Fixture()
        var t = TarBuilder()
        t.entry(name: Array("f".utf8), type: TarBuilder.regular, extraPAX: [("mtime", Array("-1.25".utf8))])
        try f.extract(t.archive)
        let st = try #require(lstatOf(f.r("f")))
        #expect(st.st_mtim.tv_sec == -2 && st.st_mtim.tv_nsec == 750_000_000)
    }
}
