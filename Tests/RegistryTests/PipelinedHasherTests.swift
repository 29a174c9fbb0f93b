import NIOCore
import OCI
import Testing

@testable import Registry

/// The download's hashing thread gives the digest in-line hashing gives, however the chunks come.
@Suite struct PipelinedHasherTests {
    static func chunks(total: Int, seed: UInt64) -> [ByteBuffer] {
        var state = seed
        var out: [ByteBuffer] = []
        var left = total
        while left > 0 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let n = min(left, Int(state >> 44) % 300_000 + 1)
            var b = ByteBufferAllocator().buffer(capacity: n)
            b.writeBytes((0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(state >> 56)) })
            out.append(b)
            left -= n
        }
        return out
    }

    @Test("same digest as hashing in line, past the queue limit, sha256 and sha512", arguments: ["sha256", "sha512"])
    func sameDigest(algorithm: String) {
        let data = Self.chunks(total: 2 * PipelinedHasher.limit + 12345, seed: 7)
        var inline = BlobHasher(algorithm: algorithm)
        for c in data { c.withUnsafeReadableBytes { inline.update($0) } }
        let pipe = PipelinedHasher(BlobHasher(algorithm: algorithm))
        for c in data { pipe.update(c) }
        #expect(pipe.finalize() == inline.finalize())
    }

    @Test("a resumed prefix is continued; cancel ends the thread with chunks still queued")
    func resumeAndCancel() {
        var prefix = BlobHasher(algorithm: "sha256")
        prefix.update(Array("resumed prefix".utf8))
        var whole = BlobHasher(algorithm: "sha256")
        whole.update(Array("resumed prefix".utf8))
        let rest = Self.chunks(total: 1 << 20, seed: 3)
        for c in rest { c.withUnsafeReadableBytes { whole.update($0) } }
        let pipe = PipelinedHasher(prefix)
        for c in rest { pipe.update(c) }
        #expect(pipe.finalize() == whole.finalize())
        pipe.cancel()  // after finalize: nothing to stop

        let abandoned = PipelinedHasher(BlobHasher(algorithm: "sha256"))
        for c in Self.chunks(total: 3 * PipelinedHasher.limit / 2, seed: 9) { abandoned.update(c) }
        abandoned.cancel()  // returns: the thread drops what is queued and ends
        abandoned.cancel()
    }
}
