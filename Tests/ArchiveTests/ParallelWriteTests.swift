import Foundation
import Testing
@testable import Archive
import OCI
import TestSupport
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// Regular files are created by `FileWriterPool` threads (`ExtractOptions.writerThreads`). These
/// check that every ordering the tar stream implies survives that: results must be those of the
/// single-threaded extractor, and errors too.
@Suite(.timeLimit(.minutes(2))) struct ParallelWriteTests {
    static func options(threads: Int) -> ExtractOptions {
        var o = ExtractOptions()
        o.writerThreads = threads
        return o
    }

    /// One line per path under `root`: type, mode, size, mtime, link target, and for files with
    /// several links the first path of the same inode (hardlink identity without inode numbers).
    static func tree(_ root: String) -> [String] {
        var paths: [String] = []
        func walk(_ rel: String) {
            let full = rel.isEmpty ? root : root + "/" + rel
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: full) else { return }
            for n in names.sorted() {
                let p = rel.isEmpty ? n : rel + "/" + n
                paths.append(p)
                if isDir(root + "/" + p) { walk(p) }
            }
        }
        walk("")
        var firstOfInode: [String: String] = [:]
        var out: [String] = []
        for p in paths {
            guard let st = lstatOf(root + "/" + p) else { continue }
            let fmt = st.st_mode & 0o170000
            let type = fmt == 0o040000 ? "d" : fmt == 0o120000 ? "l" : fmt == 0o100000 ? "f" : "o"
            // Directories changed by a later layer get the time of the run: shown as "now".
            let mtime = st.st_mtim.tv_sec > 1_700_000_000 ? "now" : "\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
            var line = "\(p) \(type) \(String(st.st_mode & 0o7777, radix: 8)) \(type == "d" ? 0 : st.st_size) \(mtime)"
            if type == "l" { line += " -> \(linkTarget(root + "/" + p) ?? "?")" }
            if type == "f" {
                line += " " + (text(root + "/" + p).map { String($0.hashValue & 0xFFFF) } ?? "?")
                if st.st_nlink > 1 {
                    let id = "\(st.st_dev):\(st.st_ino)"
                    if let first = firstOfInode[id] { line += " =\(first)" } else { firstOfInode[id] = p }
                }
            }
            out.append(line)
        }
        return out
    }

    /// Extracts `layers` with 0 and with `threads` writer threads into two fresh roots (each with
    /// the same `seed` of pre-existing content); returns both trees and outcomes.
    static func both(
        _ layers: [[UInt8]], threads: Int = 2, seed: (String) throws -> Void = { _ in }
    )
        throws -> [(tree: [String], error: ArchiveError?, report: FileWriterPool.Report?)]
    {
        var out: [([String], ArchiveError?, FileWriterPool.Report?)] = []
        for t in [0, threads] {
            let f = try Fixture()
            try seed(f.root)
            let x = try LayerExtractor(root: f.root, options: options(threads: t))
            var error: ArchiveError?
            do {
                for l in layers { try x.extract(layerAt: try f.layer(l)) }
            } catch let e as ArchiveError { error = e }
            #expect(f.outsideIntact())
            #expect(openFDs(under: f.root).isEmpty, "fds left open under the root: \(openFDs(under: f.root))")
            if let r = x.lastWriterReport { #expect(r.threadsJoined == r.threadsStarted) }
            out.append((tree(f.root), error, x.lastWriterReport))
        }
        return out
    }

    /// Open fds of this process that point inside `root` (not at the root itself).
    static func openFDs(under root: String) -> [String] {
        let real = (try? FileManager.default.destinationOfSymbolicLink(atPath: root)) ?? root
        var out: [String] = []
        for n in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            guard let t = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + n) else { continue }
            if t.hasPrefix(root + "/") || t.hasPrefix(real + "/") { out.append(t) }
        }
        return out
    }

    private func expectSame(
        _ r: [(tree: [String], error: ArchiveError?, report: FileWriterPool.Report?)],
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(r[0].tree == r[1].tree, sourceLocation: sourceLocation)
        #expect(r[0].error == r[1].error, sourceLocation: sourceLocation)
        #expect(r[0].report == nil, sourceLocation: sourceLocation)
        #expect(r[1].report != nil, sourceLocation: sourceLocation)
    }

    // MARK: - orderings

    @Test func duplicateRegularEntriesLastWins() throws {
        var l1 = TarBuilder()
        l1.dir("d")
        for i in 0..<5 { l1.file("d/x", "version \(i)", mode: 0o600 + UInt32(i), mtime: 1_600_000_000 + Int64(i)) }
        l1.file("top", "one")
        l1.file("top", "two", mode: 0o640)
        var l2 = TarBuilder()  // lower-layer files replaced, twice
        l2.file("d/x", "upper a")
        l2.file("d/x", "upper b", mode: 0o700)
        let r = try Self.both([l1.archive, l2.archive])
        expectSame(r)
        #expect(r[1].tree.contains { $0.hasPrefix("d/x f 700 7 ") })
        #expect(r[1].tree.contains { $0.hasPrefix("top f 640 3 ") })
    }

    @Test func fileThenHardlinkToIt() throws {
        var l = TarBuilder()
        l.dir("d")
        l.file("d/a", "content")
        l.hardlink("d/b", to: "d/a")
        l.file("c", "c")
        l.hardlink("e", to: "c")
        l.file("c", "new c")  // replaces c; e keeps the old inode
        let r = try Self.both([l.archive])
        expectSame(r)
        #expect(r[1].tree.contains { $0.hasPrefix("d/b f 644 7 ") && $0.hasSuffix(" =d/a") })
    }

    @Test func fileThenDirectoryOfTheSameNameAndBack() throws {
        var l1 = TarBuilder()
        l1.file("n", "file")
        l1.dir("n")
        l1.file("n/child", "c")
        l1.dir("m")
        l1.file("m/x", "x")
        l1.file("m", "now a file")
        l1.file("p", "p")
        l1.file("p/q", "walk replaces p")  // no directory entry: the parent walk replaces the file
        var l2 = TarBuilder()
        l2.file("n", "file again")  // lower directory replaced by a file
        l2.dir("m")  // lower file replaced by a directory
        l2.file("m/y", "y")
        let r = try Self.both([l1.archive, l2.archive])
        expectSame(r)
        #expect(r[1].tree.contains { $0.hasPrefix("n f ") })
        #expect(r[1].tree.contains { $0.hasPrefix("m/y f ") })
        #expect(r[1].tree.contains { $0.hasPrefix("p/q f ") })
    }

    /// A walk through a symlink onto a queued file: the file's directory-ness comes from the walk.
    @Test func walkThroughSymlinkOntoQueuedFile() throws {
        var l = TarBuilder()
        l.dir("d")
        l.symlink("s", to: "d/t")
        l.file("d/t", "file first")
        l.file("s/x", "the walk makes d/t a directory")
        l.symlink("abs", to: "/d/u")
        l.file("d/u", "u")
        l.file("abs/y", "y")
        let r = try Self.both([l.archive])
        expectSame(r)
        #expect(r[1].tree.contains { $0.hasPrefix("d/t/x f ") })
        #expect(r[1].tree.contains { $0.hasPrefix("d/u/y f ") })
    }

    @Test func fileThenWhiteoutInTheSameAndALaterLayer() throws {
        var l1 = TarBuilder()
        l1.dir("d")
        l1.file("d/a", "a")
        l1.file("d/b", "b")
        l1.file("d/.wh.a")  // same layer: kept
        var l2 = TarBuilder()
        l2.file("d/c", "c")
        l2.file("d/.wh.b")  // later layer: removed
        l2.file("d/.wh.c")  // this layer's c: kept
        var l3 = TarBuilder()
        l3.dir("e")
        l3.file("e/new", "n")
        l3.file("d/z", "z")
        l3.file("d/.wh..wh..opq")  // opaque after this layer's files
        let r = try Self.both([l1.archive, l2.archive, l3.archive])
        expectSame(r)
        #expect(r[1].tree.filter { $0.hasPrefix("d/") }.map { $0.split(separator: " ")[0] } == ["d/z"])
    }

    @Test func fileThenSymlinkOrNodeReplacingIt() throws {
        var l = TarBuilder()
        l.dir("d")
        l.file("d/a", "a")
        l.symlink("d/a", to: "elsewhere")
        l.file("d/b", "b")
        l.fifo("d/b")
        l.file("d/c", "c")
        l.symlink("d/c", to: "b")
        l.file("d/c", "file again")
        let r = try Self.both([l.archive])
        expectSame(r)
        #expect(r[1].tree.contains { $0 == "d/a l 777 9 1600000000.0 -> elsewhere" })
    }

    /// Each directory with queued files holds a duplicated descriptor: past
    /// `writerMaxDirectories` the extractor waits for the queued files first, so a layer with
    /// many small directories cannot run out of descriptors (RLIMIT_NOFILE is often 1024).
    @Test func directoryDescriptorsAreBounded() throws {
        var l = TarBuilder()
        for d in 0..<60 {
            l.dir("d\(d)", mode: 0o755, mtime: 1_500_000_000)
            for i in 0..<3 { l.file("d\(d)/f\(i)", "\(d)-\(i)\n", mode: 0o644, mtime: 1_400_000_000) }
        }
        let f = try Fixture()
        var o = Self.options(threads: 2)
        o.writerMaxDirectories = 4
        let x = try LayerExtractor(root: f.root, options: o)
        try x.extract(layerAt: try f.layer(l.archive))
        for d in 0..<60 { for i in 0..<3 { #expect(text(f.r("d\(d)/f\(i)")) == "\(d)-\(i)\n") } }
        let report = try #require(x.lastWriterReport)
        #expect(report.jobsWritten == 180)
        #expect(report.drains >= 60 / 4 - 1, "a wait every 4 directories: \(report)")
        #expect(Self.openFDs(under: f.root).isEmpty)
    }

    @Test func manyFilesAcrossDirectories() throws {
        var l = TarBuilder()
        var expected: [(String, String, UInt32, Int64)] = []
        for d in 0..<50 {
            l.dir("dir\(d)", mode: 0o750, mtime: 1_500_000_000 + Int64(d))
            for i in 0..<40 {
                let body = String(repeating: "\(d).\(i) ", count: (i * 37 + d) % 300)
                let m: UInt32 = [0o644, 0o600, 0o755, 0o444, 0o700][i % 5]
                let mt = 1_400_000_000 + Int64(d * 100 + i)
                l.file("dir\(d)/f\(i)", body, mode: m, mtime: mt)
                expected.append(("dir\(d)/f\(i)", body, m | 0o600, mt))
            }
        }
        let f = try Fixture()
        let x = try LayerExtractor(root: f.root, options: Self.options(threads: 3))
        try x.extract(layerAt: try f.layer(l.archive))
        for (p, body, m, mt) in expected {
            #expect(text(f.r(p)) == body, "\(p)")
            #expect(mode(f.r(p)) == m, "\(p)")
            #expect(lstatOf(f.r(p))?.st_mtim.tv_sec == Int(mt), "\(p)")
        }
        for d in 0..<50 {
            #expect(mode(f.r("dir\(d)")) == 0o750)
            #expect(lstatOf(f.r("dir\(d)"))?.st_mtim.tv_sec == 1_500_000_000 + d)
        }
        let report = try #require(x.lastWriterReport)
        #expect(report.threadsStarted == 3 && report.threadsJoined == 3)
        #expect(report.jobsWritten == 2000)
        #expect(Self.openFDs(under: f.root).isEmpty)
    }

    /// A small byte budget makes the extractor wait for room; big files go inline; same tree.
    @Test func boundedQueueAndInlineBigFiles() throws {
        var l = TarBuilder()
        l.dir("d")
        for i in 0..<200 { l.file("d/f\(i)", bytes: [UInt8](repeating: UInt8(i), count: 5000 + i)) }
        l.file("d/big", bytes: [UInt8](repeating: 7, count: 300_000))
        var o = Self.options(threads: 2)
        o.writerMaxBytes = 16 * 1024
        o.writerMaxJobs = 4
        o.writerInlineThreshold = 100_000
        let f = try Fixture(), g = try Fixture()
        let x = try LayerExtractor(root: f.root, options: o)
        try x.extract(layerAt: try f.layer(l.archive))
        try LayerExtractor(root: g.root, options: Self.options(threads: 0)).extract(layerAt: try g.layer(l.archive))
        #expect(Self.tree(f.root) == Self.tree(g.root))
        let report = try #require(x.lastWriterReport)
        #expect(report.waitsForRoom > 0)
        #expect(report.peakBytes <= 16 * 1024)
        #expect(report.jobsWritten == 200)
    }

    /// A mixed multi-layer image, compared entry by entry with the single-threaded extractor.
    @Test(arguments: [2, 3])
    func sameTreeAsSingleThreaded(threads: Int) throws {
        var l1 = TarBuilder()
        l1.dir("usr"); l1.dir("usr/bin"); l1.dir("usr/lib", mode: 0o555)
        for i in 0..<300 { l1.file("usr/lib/lib\(i).so", String(repeating: "x", count: i * 13), mode: 0o755) }
        for i in 0..<50 { l1.hardlink("usr/bin/h\(i)", to: "usr/lib/lib\(i * 3).so") }
        l1.symlink("lib", to: "usr/lib")
        l1.file("etc/conf", "c", mode: 0o600)  // implicit parent
        l1.dir("etc", mode: 0o700, mtime: 1_111_111_111)
        l1.dir("var"); l1.dir("var/cache")
        for i in 0..<100 { l1.file("var/cache/c\(i)", "cache \(i)") }
        var l2 = TarBuilder()
        for i in stride(from: 0, to: 300, by: 7) { l2.file("usr/lib/lib\(i).so", "updated \(i)") }
        for i in 0..<40 { l2.file("lib/via-link-\(i)", "l\(i)") }  // through the lower symlink
        l2.file("var/.wh.cache")
        l2.file("var/cache", "cache is a file now")
        l2.hardlink("usr/bin/h1", to: "usr/lib/lib0.so")
        l2.file("etc/.wh..wh..opq")
        l2.file("etc/new", "n")
        let r = try Self.both([l1.archive, l2.archive], threads: threads)
        expectSame(r)
        #expect(r[1].tree.count == 398)
    }

    // MARK: - errors

    /// A name too long for the filesystem fails in a worker: same error as single-threaded (also
    /// when a later entry fails too: the earlier entry's error wins), no thread or fd left.
    @Test(arguments: [false, true])
    func workerErrorIsReportedLikeSingleThreaded(truncatedAfter: Bool) throws {
        var l = TarBuilder()
        l.dir("d")
        for i in 0..<20 { l.file("d/ok\(i)", "ok") }
        l.file("d/" + String(repeating: "n", count: 300), "too long")
        for i in 0..<20 { l.file("d/after\(i)", "after") }
        var bytes = l.archive
        if truncatedAfter {
            l.file("d/cut", String(repeating: "c", count: 5000))
            bytes = Array(l.bytes.dropLast(3000))
        }
        let r = try Self.both([bytes])
        #expect(r[0].error != nil)
        #expect(r[0].error == r[1].error)
        #expect(r[1].error?.kind == .io)
        #expect(r[1].error?.description.contains("create '/d/nnnn") == true)
        #expect(r[1].error?.description.contains("File name too long") == true)
        #expect(r[1].report.map { $0.threadsStarted == 2 && $0.threadsJoined == 2 } == true)
        #expect(r[0].tree.filter { $0.hasPrefix("d/ok") } == r[1].tree.filter { $0.hasPrefix("d/ok") })
    }

    /// Without the DAC capabilities, a lower-layer directory owned by someone else and not
    /// writable: the worker (which inherits the extracting thread's credentials) fails to create,
    /// exactly like the single-threaded extractor.
    @Test func workerPermissionErrorWithoutPrivileges() throws {
        var results: [String] = []
        for threads in [0, 2] {
            let f = try Fixture()
            try FileManager.default.createDirectory(atPath: f.r("ro"), withIntermediateDirectories: true)
            #expect(chown(f.r("ro"), 65534, 65534) == 0)
            chmod(f.r("ro"), 0o755)
            var l = TarBuilder()
            l.file("fine", "f")
            l.file("ro/denied", "d")
            l.file("later", "l")
            let p = try f.layer(l.archive)
            let root = f.root
            let o = Self.options(threads: threads)
            final class Box: @unchecked Sendable { var report: FileWriterPool.Report? }
            let box = Box()
            let result = runWithoutDACCapabilities {
                do {
                    let x = try LayerExtractor(root: root, options: o)
                    defer { box.report = x.lastWriterReport }
                    try x.extract(layerAt: p)
                    return "no error"
                } catch { return "\(error)" }
            }
            results.append(result ?? "nil")
            #expect(text(f.r("fine")) == "f")
            #expect(!exists(f.r("ro/denied")))
            if threads == 2 { #expect(box.report.map { $0.threadsJoined == 2 } == true) }
            #expect(Self.openFDs(under: f.root).isEmpty)
        }
        #expect(results[0] == results[1])
        #expect(results[1].contains("create '/ro/denied': Permission denied"))
    }

    /// One extractor, several layers, errors in between: every layer starts and ends its threads.
    @Test func poolPerLayerAndReuseAfterError() throws {
        let f = try Fixture()
        let x = try LayerExtractor(root: f.root, options: Self.options(threads: 2))
        var bad = TarBuilder()
        bad.file("a/" + String(repeating: "z", count: 400), "x")
        #expect(expectArchiveError { try x.extract(layerAt: try f.layer(bad.archive)) } != nil)
        #expect(x.lastWriterReport?.threadsJoined == 2)
        var good = TarBuilder()
        good.file("a/ok", "ok")
        try x.extract(layerAt: try f.layer(good.archive))
        #expect(text(f.r("a/ok")) == "ok")
        #expect(x.lastWriterReport?.jobsWritten == 1)
        #expect(Self.openFDs(under: f.root).isEmpty)
    }

    // MARK: - benchmark (UDOCKER_EXTRACT_BENCH=1; prints timings, asserts nothing about them)

    @Test(
        .enabled(if: ProcessInfo.processInfo.environment["UDOCKER_EXTRACT_BENCH"] == "1"),
        .timeLimit(.minutes(30)))
    func extractBenchmark() throws {
        let env = ProcessInfo.processInfo.environment
        let layer =
            env["UDOCKER_EXTRACT_BENCH_LAYER"]
            ?? "/tmp/udocker-e2e/cache/bench-oci-v1/blobs/sha256/18f9b83866afe85b1210d3c7d4d4b046372cbe4466a42f5e943976ff5d1e2345"
        let work = env["UDOCKER_EXTRACT_BENCH_DIR"] ?? "/tmp/xbench"
        let reps = Int(env["UDOCKER_EXTRACT_BENCH_REPS"] ?? "5") ?? 5
        let threads = (env["UDOCKER_EXTRACT_BENCH_THREADS"] ?? "0,1,2,3").split(separator: ",").compactMap { Int($0) }
        // Where the DiffID hash runs: "decode" (the decompressing thread) and/or "extract".
        let hashOn = (env["UDOCKER_EXTRACT_BENCH_HASH_ON"] ?? "decode").split(separator: ",").map(String.init)
        let settings = threads.flatMap { t in hashOn.map { (t, $0) } }
        func now() -> Double { var t = timespec(); clock_gettime(CLOCK_MONOTONIC, &t); return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9 }
        var times: [String: [Double]] = [:]
        var n = 0
        // Interleaved, so a slow phase of the disk hits every setting alike; nothing is deleted
        // until the end (new files are slow on ext4 right after mass deletions).
        for rep in 0..<reps {
            for (t, h) in settings {
                n += 1
                let dir = "\(work)/\(getpid())-\(n)"
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                var o = Self.options(threads: t)
                o.hashOnDecodeThread = h == "decode"
                let x = try LayerExtractor(root: dir, options: o)
                let t0 = now()
                try x.extract(layerAt: layer)
                let dt = now() - t0
                let key = "writerThreads=\(t) hash=\(h)"
                times[key, default: []].append(dt)
                print("bench rep \(rep) \(key): \(String(format: "%.3f", dt)) s \(x.lastWriterReport.map { "\($0)" } ?? "")")
            }
        }
        for key in times.keys.sorted() {
            let s = times[key]!.sorted()
            print(
                "bench \(key): median \(String(format: "%.3f", s[s.count / 2])) s, min \(String(format: "%.3f", s[0])) s, all \(s.map { String(format: "%.3f", $0) })"
            )
        }
        if env["UDOCKER_EXTRACT_BENCH_KEEP"] != "1" {
            for i in 1...n { try? FileTree.remove("\(work)/\(getpid())-\(i)") }
        }
    }
}
