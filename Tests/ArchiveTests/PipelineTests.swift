import Foundation
import Testing
@testable import Archive
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// Compressed layers are decompressed and hashed on a second thread (`DecodePipeline`). These check
/// that results and errors are exactly those of the single-threaded path, and that neither side can
/// leave the other stuck.
@Suite(.timeLimit(.minutes(2))) struct PipelineTests {
    /// Compressible but not trivial text (so deflate emits Huffman blocks a flipped byte breaks).
    private static func text(_ n: Int, seed: UInt32) -> [UInt8] {
        let words = ["alpha ", "beta ", "gamma ", "delta ", "epsilon ", "zeta ", "eta ", "theta\n", "iota ", "kappa "]
            .map { Array($0.utf8) }
        var out: [UInt8] = []
        out.reserveCapacity(n + 16)
        var x = seed
        while out.count < n {
            x = x &* 1_103_515_245 &+ 12345
            out += words[Int(x >> 16) % words.count]
            if x & 0x700 == 0 { out += Array(String(x).utf8) }
        }
        return Array(out.prefix(n))
    }

    /// A device entry first (its warning is where the tests park the consumer), then many files.
    private static func manyFiles(total: Int, head: (inout TarBuilder) -> Void = { _ in }) -> [UInt8] {
        var t = TarBuilder()
        t.charDevice("null")
        head(&t)
        t.dir("d")
        var i = 0
        var size = 0
        while size < total {
            let body = text(20_000 + (i % 7) * 3000, seed: UInt32(i))
            t.file("d/f\(i)", bytes: body)
            size += body.count + 512
            i += 1
        }
        return t.archive
    }

    private static func gzip(_ f: Fixture, _ tar: [UInt8], name: String) throws -> String {
        let p = try f.layer(tar, name: name)
        let (st, _) = try sh("gzip -6 -c '\(p)' > '\(p).gz'")
        #expect(st == 0)
        return p + ".gz"
    }

    private static func bytes(_ path: String) throws -> [UInt8] {
        try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Every path under `root` with its size (directories as -1), sorted.
    private static func listing(_ root: String) throws -> [String] {
        let (_, out) = try sh("cd '\(root)' && find . -printf '%p %s %y\\n' | sort")
        return out.split(separator: "\n").map(String.init)
    }

    /// Extracts `layer` into a fresh root with and without the pipeline; returns both outcomes.
    private func both(
        _ layer: String, options: ExtractOptions = .init(),
        pause: (@Sendable (LayerExtractor) -> Void)? = nil
    )
        throws -> [(result: Result<Digest, ArchiveError>, listing: [String], report: DecodePipeline.Report?)]
    {
        var out: [(Result<Digest, ArchiveError>, [String], DecodePipeline.Report?)] = []
        for pipelined in [false, true] {
            let f = try Fixture()
            var o = options
            o.pipelined = pipelined
            let box = ExtractorBox()
            if let pause {
                o.warningHandler = { _ in if let x = box.x { pause(x) } }
            }
            let x = try LayerExtractor(root: f.root, options: o)
            box.x = x
            let r: Result<Digest, ArchiveError>
            do { r = .success(try x.extract(layerAt: layer)) } catch let e as ArchiveError { r = .failure(e) }
            out.append((r, try PipelineTests.listing(f.root), x.lastPipelineReport))
            #expect((x.lastPipelineReport != nil) == pipelined)
            #expect(x.currentPipeline == nil)
        }
        return out
    }

    // A successful extraction: same DiffID (trailing bytes after the end blocks included), same tree.
    @Test func sameResultAndDiffIDAsSingleThreaded() throws {
        let f = try Fixture()
        let tar = PipelineTests.manyFiles(total: 3 << 20) + [UInt8](repeating: 0, count: 10_240) + Array("trailing".utf8)
        let gz = try PipelineTests.gzip(f, tar, name: "ok.tar")
        var opts = ExtractOptions()
        opts.pipelineChunkSize = 100_000  // not a multiple of 512: headers straddle chunks
        opts.pipelineDepth = 2
        opts.bufferSize = 70_000
        let r = try both(gz, options: opts)
        #expect(try r[0].result.get() == Digest.sha256(of: tar))
        #expect(try r[1].result.get() == Digest.sha256(of: tar))
        #expect(r[0].listing == r[1].listing)
        #expect(r[0].listing.count > 100)
        // The same with the DiffID hashed on the extracting thread instead of the decoding one.
        opts.hashOnDecodeThread = !opts.hashOnDecodeThread
        let h = try both(gz, options: opts)
        #expect(try h[1].result.get() == Digest.sha256(of: tar))
        #expect(h[1].listing == r[0].listing)
        #expect(r[1].report?.end == .endOfStream)
        #expect(r[1].report?.joined == true)

        // zstd, multi-member gzip: same digests through the pipeline.
        let z = try f.layer(tar, name: "z.tar")
        try sh("zstd -q -f '\(z)' -o '\(z).zst'")
        let rz = try both(z + ".zst", options: opts)
        #expect(try rz[1].result.get() == Digest.sha256(of: tar))
        #expect(rz[0].listing == rz[1].listing)
    }

    // A decompression error in the middle of the stream, reached by the producer while the
    // consumer is parked: the consumer still gets every byte before it, then the same error.
    @Test func decompressionErrorWhileConsumerBusy() throws {
        let f = try Fixture()
        let tar = PipelineTests.manyFiles(total: 3 << 20)
        // A good member with the first 1.5 MB of the tar, then a member whose first deflate block
        // has the reserved type: zlib fails right there, without producing anything.
        let gz =
            try PipelineTests.bytes(try PipelineTests.gzip(f, Array(tar.prefix(1_500_000)), name: "bad.tar"))
            + [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3, 0x07, 0, 0, 0, 0, 0, 0, 0, 0]
        let bad = try f.layer(gz, name: "bad.tar.gz")
        let r = try both(bad) { x in
            // The producer runs into the corruption while this (consumer) thread waits.
            guard let p = x.currentPipeline else { return }
            let deadline = Date().addingTimeInterval(10)
            while p.peekReport().end == .notStarted && Date() < deadline { usleep(1000) }
            #expect(p.peekReport().end == .error)
        }
        guard case .failure(let e0) = r[0].result, case .failure(let e1) = r[1].result else {
            Issue.record("expected failures: \(r[0].result) \(r[1].result)")
            return
        }
        #expect(e0.kind == .corruptCompression)
        #expect(e0.message == "gzip: invalid block type")
        #expect(e1 == e0)
        #expect(r[0].listing == r[1].listing)
        #expect(r[0].listing.count > 10)  // the files before the corruption are there
        #expect(r[1].report?.end == .error)
        #expect(r[1].report?.joined == true)
    }

    // The consumer fails (invalid entry) while the producer is blocked on a full queue: the
    // producer is woken, stops and is joined; the error is the single-threaded one.
    @Test func consumerErrorWhileProducerBlocked() throws {
        let f = try Fixture()
        let tar = PipelineTests.manyFiles(total: 8 << 20) { $0.file("a/.wh..") }
        let gz = try PipelineTests.gzip(f, tar, name: "inv.tar")
        var opts = ExtractOptions()
        opts.pipelineChunkSize = 64 * 1024
        opts.pipelineDepth = 2
        let r = try both(gz, options: opts) { x in
            guard let p = x.currentPipeline else { return }
            let deadline = Date().addingTimeInterval(10)
            while !p.peekReport().blockedOnFullQueue && Date() < deadline { usleep(1000) }
        }
        guard case .failure(let e0) = r[0].result, case .failure(let e1) = r[1].result else {
            Issue.record("expected failures: \(r[0].result) \(r[1].result)")
            return
        }
        #expect(e0.kind == .invalidEntry)
        #expect(e0.message == "invalid whiteout entry 'a/.wh..'")
        #expect(e1 == e0)
        #expect(r[0].listing == r[1].listing)
        let rep = r[1].report
        #expect(rep?.blockedOnFullQueue == true)
        #expect(rep?.end == .cancelled)
        #expect(rep?.joined == true)
        #expect((rep?.chunksProduced ?? 99) <= 4)  // stopped early, not decoded to the end
    }

    // Truncated gzip and zstd, corrupt CRC, trailing garbage: the same errors as single-threaded.
    @Test func truncatedAndCorruptStreamsSameErrors() throws {
        let f = try Fixture()
        let tar = PipelineTests.manyFiles(total: 2 << 20)
        let gz = try PipelineTests.bytes(try PipelineTests.gzip(f, tar, name: "t.tar"))
        let z = try f.layer(tar, name: "z.tar")
        try sh("zstd -q -f '\(z)' -o '\(z).zst'")
        let zst = try PipelineTests.bytes(z + ".zst")
        var crc = gz
        crc[crc.count - 6] ^= 0xFF
        let cases: [(String, [UInt8], ArchiveError.Kind)] = [
            ("gz-half", Array(gz.prefix(gz.count / 2)), .truncated),
            ("gz-tail", Array(gz.prefix(gz.count - 4)), .truncated),
            ("gz-crc", crc, .corruptCompression),
            ("gz-garbage", gz + Array("garbage".utf8), .corruptCompression),
            ("zst-half", Array(zst.prefix(zst.count / 2)), .truncated),
        ]
        var opts = ExtractOptions()
        opts.pipelineChunkSize = 128 * 1024
        opts.pipelineDepth = 2
        for (name, data, kind) in cases {
            let path = try f.layer(data, name: name)
            let r = try both(path, options: opts)
            guard case .failure(let e0) = r[0].result, case .failure(let e1) = r[1].result else {
                Issue.record("\(name): expected failures")
                continue
            }
            #expect(e0.kind == kind, "\(name)")
            #expect(e1 == e0, "\(name)")
            // zlib reports a bad CRC together with the member's last output, which is dropped:
            // how much lands on disk before that error depends on the read size, in both modes.
            if name != "gz-crc" { #expect(r[0].listing == r[1].listing, "\(name)") }
            #expect(r[1].report?.end == .error, "\(name)")
        }
    }

    // Pipes and plain tars stay on one thread.
    @Test func pipelineOnlyForCompressedFiles() throws {
        let f = try Fixture()
        let tar = PipelineTests.manyFiles(total: 100_000)
        let plain = try f.layer(tar, name: "plain.tar")
        let x = try LayerExtractor(root: f.root)
        try x.extract(layerAt: plain)
        #expect(x.lastPipelineReport == nil)
        let gz = try PipelineTests.gzip(f, tar, name: "p.tar")
        try x.extract(layerAt: gz)
        #expect(x.lastPipelineReport?.end == .endOfStream)
        let fd = open(gz, O_RDONLY)
        defer { close(fd) }
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let wfd = fds[1]
        let writer = Thread {
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(fd, &buf, buf.count)
                if n <= 0 { break }
                var off = 0
                while off < n { let w = buf.withUnsafeBytes { write(wfd, $0.baseAddress! + off, n - off) }; if w <= 0 { break }; off += w }
            }
            close(wfd)
        }
        writer.start()
        let d = try x.extract(fileDescriptor: fds[0], layerName: "pipe")
        close(fds[0])
        #expect(d == Digest.sha256(of: tar))
        #expect(x.lastPipelineReport == nil)
    }

    // MARK: - benchmark (UDOCKER_ARCHIVE_BENCH=1; layer from UDOCKER_ARCHIVE_BENCH_LAYER)

    @Test(.enabled(if: ProcessInfo.processInfo.environment["UDOCKER_ARCHIVE_BENCH"] == "1"))
    func benchmark() throws {
        let env = ProcessInfo.processInfo.environment
        let layer = env["UDOCKER_ARCHIVE_BENCH_LAYER"] ?? "/tmp/pipe-bench/layer.tar.gz"
        let work = env["UDOCKER_ARCHIVE_BENCH_DIR"] ?? "/tmp/pipe-bench/work"
        let reps = Int(env["UDOCKER_ARCHIVE_BENCH_REPS"] ?? "3") ?? 3
        let modes = (env["UDOCKER_ARCHIVE_BENCH_MODES"] ?? "single,pipe,tar").split(separator: ",").map(String.init)
        var best: [String: (Double, Double, Double)] = [:]
        func now() -> Double { var t = timespec(); clock_gettime(CLOCK_MONOTONIC, &t); return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9 }
        func cpu() -> (Double, Double) {
            var u = rusage(); getrusage(RUSAGE_SELF.rawValue, &u)
            var c = rusage(); getrusage(RUSAGE_CHILDREN.rawValue, &c)
            func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
            return (s(u.ru_utime) + s(c.ru_utime), s(u.ru_stime) + s(c.ru_stime))
        }
        for rep in 0..<reps {
            for mode in modes {
                let root = "\(work)/\(mode)-\(rep)"
                try sh("rm -rf '\(root)' && mkdir -p '\(root)' && sync")
                let (u0, s0) = cpu()
                var producer = ""
                let t0 = now()
                if mode == "tar" {
                    try sh("tar -xzf '\(layer)' -C '\(root)' --no-same-owner --no-same-permissions 2>/dev/null")
                } else {
                    var o = ExtractOptions()
                    o.pipelined = mode == "pipe"
                    o.warningHandler = nil
                    let x = try LayerExtractor(root: root, options: o)
                    try x.extract(layerAt: layer)
                    producer = x.lastPipelineReport.map { String(format: ", producer thread %.3f s CPU", $0.producerCPU) } ?? ""
                }
                let t = now() - t0
                let (u1, s1) = cpu()
                print(
                    "bench \(mode) rep \(rep): \(String(format: "%.3f", t)) s real, \(String(format: "%.3f", u1 - u0)) user, \(String(format: "%.3f", s1 - s0)) sys\(producer)"
                )
                if best[mode] == nil || t < best[mode]!.0 { best[mode] = (t, u1 - u0, s1 - s0) }
                try sh("rm -rf '\(root)'")
            }
        }
        for mode in modes {
            if let b = best[mode] {
                print(
                    "bench min \(mode): \(String(format: "%.3f", b.0)) s real (\(String(format: "%.3f", b.1)) user, \(String(format: "%.3f", b.2)) sys)"
                )
            }
        }
    }
}

final class ExtractorBox: @unchecked Sendable {
    var x: LayerExtractor?
}
