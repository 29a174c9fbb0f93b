import Foundation
import Testing
@testable import Archive
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

@Suite struct CompressionTests {
    private static let big: [UInt8] = {
        var big: [UInt8] = []
        big.reserveCapacity(3 << 20)
        var x: UInt32 = 12345
        for _ in 0..<(3 << 20) { x = x &* 1_103_515_245 &+ 12345; big.append(UInt8(truncatingIfNeeded: x >> 16)) }
        return big
    }()

    private func sampleTar() -> TarBuilder {
        var t = TarBuilder()
        t.dir("etc")
        t.file("etc/os-release", "ID=test\n")
        t.file("big", bytes: CompressionTests.big)
        t.symlink("link", to: "etc/os-release")
        return t
    }

    @Test func detection() throws {
        #expect(try Compression.detect([0x1F, 0x8B, 8, 0]) == .gzip)
        #expect(try Compression.detect([0x28, 0xB5, 0x2F, 0xFD]) == .zstd)
        #expect(try Compression.detect(Array("etc/passwd".utf8)) == .none)
        #expect(try Compression.detect(Array("BZhello....".utf8)) == .none)
        #expect(throws: ArchiveError.self) { try Compression.detect([0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00, 0, 0]) }
    }

    private func check(_ f: Fixture, expected: [UInt8]) throws {
        #expect(text(f.r("etc/os-release")) == "ID=test\n")
        #expect(lstatOf(f.r("big"))?.st_size == 3 << 20)
        #expect(try sha256sum(file: f.r("big")) == Digest.sha256(of: CompressionTests.big).hex)
        #expect(linkTarget(f.r("link")) == "etc/os-release")
    }

    // §5.17/§1.25: DiffID is the sha256 of the decompressed stream, per `gzip -dc | sha256sum`.
    @Test func gzipLayerDiffIDMatchesSha256sum() throws {
        let f = try Fixture()
        let tarPath = try f.layer(sampleTar().archive, name: "plain.tar")
        try sh("gzip -k -9 '\(tarPath)'")
        let x = try LayerExtractor(root: f.root)
        let d = try x.extract(layerAt: tarPath + ".gz")
        let (_, ref) = try sh("gzip -dc '\(tarPath).gz' | sha256sum")
        #expect(d.description == "sha256:" + ref.prefix(64))
        try check(f, expected: [])
    }

    // §5.18: multi-member gzip (pigz, cat a.gz b.gz) is read to the end.
    @Test func multiMemberGzip() throws {
        let f = try Fixture()
        let tar = sampleTar().archive
        let a = try f.layer(Array(tar.prefix(1_000_003)), name: "a")
        let b = try f.layer(Array(tar.dropFirst(1_000_003).prefix(1_500_000)), name: "b")
        let c = try f.layer(Array(tar.dropFirst(2_500_003)), name: "c")
        let out = f.tmp.sub("multi.tar.gz")
        let (st, _) = try sh("(gzip -c '\(a)'; gzip -1 -c '\(b)'; gzip -c '\(c)') > '\(out)'")
        #expect(st == 0)
        let d = try LayerExtractor(root: f.root).extract(layerAt: out)
        #expect(d == Digest.sha256(of: tar))
        try check(f, expected: tar)
    }

    @Test func gzipWithTrailingZerosIsAccepted() throws {
        let f = try Fixture()
        let tarPath = try f.layer(sampleTar().archive, name: "p.tar")
        try sh("gzip -c '\(tarPath)' > '\(tarPath).gz' && head -c 1000 /dev/zero >> '\(tarPath).gz'")
        try LayerExtractor(root: f.root).extract(layerAt: tarPath + ".gz")
        try check(f, expected: [])
    }

    // §5.16: truncated gzip, corrupt CRC, garbage after the member.
    @Test func truncatedOrCorruptGzip() throws {
        let f = try Fixture()
        let tarPath = try f.layer(sampleTar().archive, name: "p.tar")
        try sh("gzip -c '\(tarPath)' > '\(tarPath).gz'")
        let gz = try [UInt8](Data(contentsOf: URL(fileURLWithPath: tarPath + ".gz")))
        for cut in [gz.count / 2, gz.count - 4] {
            let g = try Fixture()
            let err = expectArchiveError { try g.extract(Array(gz.prefix(cut))) }
            #expect(err?.kind == .truncated, "cut \(cut)")
            #expect(err?.description.contains("truncated") == true)
        }
        var crc = gz
        crc[crc.count - 6] ^= 0xFF  // CRC32 in the trailer
        let h = try Fixture()
        let e1 = expectArchiveError { try h.extract(crc) }
        #expect(e1?.kind == .corruptCompression)
        let i = try Fixture()
        let e2 = expectArchiveError { try i.extract(gz + Array("garbage".utf8)) }
        #expect(e2?.kind == .corruptCompression)
    }

    // §5.18: zstd through the real zstd CLI, single and multi-frame; truncated zstd.
    @Test func zstdLayers() throws {
        let f = try Fixture()
        let tar = sampleTar().archive
        let tarPath = try f.layer(tar, name: "z.tar")
        let (st, _) = try sh("zstd -q -f '\(tarPath)' -o '\(tarPath).zst'")
        #expect(st == 0)
        let d = try LayerExtractor(root: f.root).extract(layerAt: tarPath + ".zst")
        #expect(d == Digest.sha256(of: tar))
        try check(f, expected: tar)

        let g = try Fixture()
        let a = try g.layer(Array(tar.prefix(777_777)), name: "a")
        let b = try g.layer(Array(tar.dropFirst(777_777)), name: "b")
        try sh("(zstd -q -c '\(a)'; zstd -q -19 -c '\(b)') > '\(g.tmp.sub("m.zst"))'")
        let d2 = try LayerExtractor(root: g.root).extract(layerAt: g.tmp.sub("m.zst"))
        #expect(d2 == Digest.sha256(of: tar))
        try check(g, expected: tar)

        let zst = try [UInt8](Data(contentsOf: URL(fileURLWithPath: tarPath + ".zst")))
        let h = try Fixture()
        let err = expectArchiveError { try h.extract(Array(zst.prefix(zst.count / 2))) }
        #expect(err?.kind == .truncated)
        #expect(err?.description.contains("truncated zstd stream") == true)
    }

    // Extraction from a pipe (stdin-like source), with a small buffer to exercise refills.
    @Test func extractFromPipe() throws {
        let f = try Fixture()
        let tar = sampleTar().archive
        let tarPath = try f.layer(tar, name: "p.tar")
        try sh("gzip -c '\(tarPath)' > '\(tarPath).gz'")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/cat")
        p.arguments = [tarPath + ".gz"]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        var opts = ExtractOptions()
        opts.bufferSize = 70_000
        opts.inputBufferSize = 5000
        let x = try LayerExtractor(root: f.root, options: opts)
        let d = try x.extract(fileDescriptor: pipe.fileHandleForReading.fileDescriptor)
        p.waitUntilExit()
        #expect(d == Digest.sha256(of: tar))
        try check(f, expected: tar)
    }
}
