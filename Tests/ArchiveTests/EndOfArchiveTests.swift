import Foundation
import Testing
@testable import Archive

/// A tar cut at an entry boundary: accepted for registry layers (GNU tar does too), refused for
/// user tarballs (`import`) that nothing else checks.
@Suite struct EndOfArchiveTests {
    func archive() -> (complete: [UInt8], cut: [UInt8], loneZero: [UInt8]) {
        var t = TarBuilder()
        t.file("a", String(repeating: "x", count: 700))
        t.file("b", "second")
        let complete = t.archive
        let cut = Array(complete.prefix(complete.count - 1024))  // no end blocks
        let loneZero = Array(complete.prefix(complete.count - 512))  // one end block
        return (complete, cut, loneZero)
    }

    @Test func cutAtEntryBoundary() throws {
        let f = try Fixture()
        let (complete, cut, loneZero) = archive()
        #expect(try LayerInspector.inspect(path: f.layer(complete), requireEndOfArchive: true).entries == 2)
        #expect(try LayerInspector.inspect(path: f.layer(loneZero), requireEndOfArchive: true).entries == 2)
        #expect(try LayerInspector.inspect(path: f.layer(cut)).entries == 2)  // layers: accepted
        do {
            _ = try LayerInspector.inspect(path: f.layer(cut), requireEndOfArchive: true)
            Issue.record("a tar without end-of-archive blocks was accepted for import")
        } catch let e as ArchiveError {
            #expect(e.kind == .truncated)
            #expect(e.description.contains("end-of-archive"))
        }
    }
}
