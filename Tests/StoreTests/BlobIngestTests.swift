import Foundation
import OCI
import Store
import UDockerSystem
import TestSupport
import Testing

/// Store owns how blobs enter `layers/`: the config written from memory, staged files adopted,
/// download sessions, and what prune may remove.
@Suite struct BlobIngestTests {
    @Test func storeChecksSizeAndDigestBeforeWriting() throws {
        let tmp = try TemporaryDirectory()
        let ingest = BlobIngest(directory: tmp.path)
        let bytes = Array("{\"architecture\":\"amd64\"}".utf8)
        let good = Descriptor(mediaType: MediaType.dockerConfig, digest: Digest.sha256(of: bytes), size: Int64(bytes.count))
        var lying = good
        lying.digest = Digest.sha256(of: [1, 2, 3])
        #expect(throws: StoreError.self) { try ingest.store(bytes, as: lying) }
        var short = good
        short.size -= 1
        #expect(throws: StoreError.self) { try ingest.store(bytes, as: short) }
        #expect(FileInfo.list(tmp.path).isEmpty)
        try ingest.store(bytes, as: good)
        #expect(AtomicFile.read(ingest.path(of: good.digest)) == bytes)
        #expect(ingest.contains(good.digest, size: good.size))
    }

    @Test func aSessionCommitsUnderTheDigestAndNoneIsOpenedForAPresentBlob() async throws {
        let tmp = try TemporaryDirectory()
        let ingest = BlobIngest(directory: tmp.path)
        let bytes = [UInt8](repeating: 9, count: 5000)
        let d = Descriptor(mediaType: MediaType.dockerLayerGzip, digest: Digest.sha256(of: bytes), size: 5000)
        let session = try #require(try await ingest.session(for: d, onWait: {}))
        try bytes.withUnsafeBytes { try session.write($0, at: 0) }
        #expect(FileInfo.list(tmp.path) == ["\(d.digest).partial"])
        #expect(!BlobIngest.partialIsAbandoned(tmp.sub("\(d.digest).partial")), "the session holds its lock")
        try session.commit(size: 5000)
        session.close()
        #expect(FileInfo.list(tmp.path) == [d.digest.fileName])
        #expect(try await ingest.session(for: d, onWait: {}) == nil)
        // load's staged file for the same blob: nothing moved, nothing replaced.
        _ = FileManager.default.createFile(atPath: tmp.sub("staged"), contents: Data([1]))
        #expect(try ingest.adopt(tmp.sub("staged"), as: d.digest) == nil)
        #expect(AtomicFile.read(ingest.path(of: d.digest)) == bytes)
    }
}
