import Foundation
import OCI
import Store
import TestSupport
import Testing
import UDockerSystem

#if canImport(Glibc)
import Glibc
#endif

/// Issue 10, node-local locks: a shared `<blob>.partial` only where `flock` reaches every puller.
/// The filesystem is injected; a real Lustre/BeeGFS mount across two nodes cannot exist here.
@Suite struct LockReachTests {
    typealias M = LockReach.Magic

    @Test(arguments: [
        (M.ext4, [String](), LockReach.everyPuller), (M.xfs, [], .everyPuller), (M.tmpfs, [], .everyPuller),
        (M.gpfs, [], .everyPuller), (M.ceph, [], .everyPuller),
        (M.lustre, ["rw", "flock"], .everyPuller), (M.lustre, ["rw", "localflock"], .thisNodeOnly),
        (M.lustre, ["rw"], .thisNodeOnly), (M.beegfs, ["rw"], .thisNodeOnly),
        (M.nfs, ["rw", "vers=4.2"], .everyPuller), (M.nfs, ["rw", "local_lock=flock"], .thisNodeOnly),
        (M.nfs, ["local_lock=all"], .thisNodeOnly), (M.fuse, [], .thisNodeOnly), (0x1234_5678, [], .thisNodeOnly),
    ])
    func decision(_ c: (type: UInt, options: [String], reach: LockReach)) {
        #expect(LockReach.of(filesystemType: c.type, options: c.options) == c.reach)
    }

    @Test func thisMachinesFilesystemIsAsked() throws {
        let tmp = try TemporaryDirectory()
        let reported = try #require(Self.statfsType(tmp.path))
        let type = UInt(reported)
        if type != M.lustre && type != M.nfs {
            #expect(LockReach.of(directory: tmp.path) == LockReach.of(filesystemType: type, options: []))
        }
    }

    /// `stat -f -c %t`: the magic number as the kernel reports it, independently of our C shim.
    static func statfsType(_ path: String) -> Int? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/stat")
        p.arguments = ["-f", "-c", "%t", path]
        let out = Pipe()
        p.standardOutput = out
        guard (try? p.run()) != nil else { return nil }
        p.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines), radix: 16)
    }

    /// Where locks are node-local, each puller writes a private partial (two nodes never share a
    /// file) and both still publish one verified blob; where they reach everyone, the shared name.
    @Test func nodeLocalLocksGetPrivatePartials() async throws {
        let tmp = try TemporaryDirectory()
        let bytes = [UInt8](repeating: 7, count: 3000)
        let d = Descriptor(mediaType: MediaType.dockerLayerGzip, digest: Digest.sha256(of: bytes), size: 3000)
        let nodeA = BlobIngest(directory: tmp.path, lockReach: .thisNodeOnly)
        let nodeB = BlobIngest(directory: tmp.path, lockReach: .thisNodeOnly)
        let a = try #require(try await nodeA.session(for: d, onWait: {}))
        // Node B must not wait for node A's lock (it could not see it on a real cluster): a wait is
        // a failure, and is cancelled so the test ends.
        let waited = Flag()
        let box = SessionBox()
        let pending = Task { box.session = try await nodeB.session(for: d, onWait: { waited.set() }) }
        let watchdog = Task {
            for _ in 0..<500 where !waited.isSet { try? await Task.sleep(for: .milliseconds(10)) }
            if waited.isSet { pending.cancel() }
        }
        _ = try? await pending.value
        watchdog.cancel()
        #expect(!waited.isSet, "node B waited for a lock node A holds")
        let b = try #require(box.session)
        #expect(a.path != b.path)
        #expect(a.path != tmp.sub("\(d.digest).partial") && b.path != tmp.sub("\(d.digest).partial"))
        try bytes.withUnsafeBytes { try a.write($0, at: 0) }
        try bytes.withUnsafeBytes { try b.write($0, at: 0) }
        try a.commit(size: 3000); a.close()
        try b.commit(size: 3000); b.close()
        #expect(FileInfo.list(tmp.path) == [d.digest.fileName])
        #expect(AtomicFile.read(tmp.sub(d.digest.fileName)) == bytes)

        let other = [UInt8](repeating: 8, count: 100)
        let e = Descriptor(mediaType: MediaType.dockerLayerGzip, digest: Digest.sha256(of: other), size: 100)
        let shared = try #require(try await BlobIngest(directory: tmp.path, lockReach: .everyPuller).session(for: e, onWait: {}))
        #expect(shared.path == tmp.sub("\(e.digest).partial"))
        shared.discard(); shared.close()
    }
}

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

final class SessionBox: @unchecked Sendable { var session: IngestSession? }
