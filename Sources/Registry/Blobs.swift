import AsyncHTTPClient
import FoundationEssentials
import NIOCore
import NIOHTTP1
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension RegistryClient {
    /// Downloads each blob `store` does not hold yet, `options.parallelism` at a time.
    ///
    /// The store hands out one writer per blob (it owns the destination, the partial file, the
    /// lock and publication); this client only streams into it: the bytes are hashed as they
    /// arrive, at most `descriptor.size` bytes are accepted, and the writer is committed only when
    /// size and digest match. Bytes the writer already holds (an interrupted run), or a connection
    /// lost midway, resume with `Range`; if the server ignores the range (200) or answers with a
    /// wrong `Content-Range`, the download restarts from 0. A mismatch after a resumed download
    /// restarts once from 0; otherwise the writer is discarded and the error thrown.
    /// Foreign-layer `urls` are never fetched: the registry is asked.
    public func fetchBlobs(
        _ ref: ImageReference, _ blobs: [Descriptor], into store: some BlobStore,
        progress: (@Sendable (ProgressEvent) -> Void)?
    ) async throws {
        var seen = Set<Digest>()
        let unique = blobs.filter { seen.insert($0.digest).inserted }
        guard !unique.isEmpty else { return }
        for d in unique where d.size < 0 {
            throw RegistryError.invalidManifest("negative size for \(d.digest)")
        }
        let endpoint = try await endpoint(for: ref)
        let width = options.parallelism
        try await withThrowingTaskGroup(of: Void.self) { group in
            var pending = unique.makeIterator()
            for _ in 0..<width {
                guard let d = pending.next() else { break }
                group.addTask { try await self.watchedFetch(endpoint, d, store: store, progress: progress) }
            }
            while try await group.next() != nil {
                if let d = pending.next() {
                    group.addTask { try await self.watchedFetch(endpoint, d, store: store, progress: progress) }
                }
            }
        }
    }

    static func shortName(_ d: Digest) -> String { "\(d.algorithm):\(d.hex.prefix(12))" }

    /// `fetchBlob` under the transfer limits: a body that stalls or drips ends the pull with one
    /// error (not retried: a batch job needs bounded time), its partial file kept for the next pull.
    func watchedFetch(
        _ endpoint: Endpoint, _ d: Descriptor, store: some BlobStore,
        progress: (@Sendable (ProgressEvent) -> Void)?
    ) async throws {
        let meter = TransferMeter()
        do {
            try await options.transferLimits.watch(meter) { meter in
                try await self.fetchBlob(endpoint, d, store: store, meter: meter, progress: progress)
            }
        } catch let e as TransferTooSlow {
            throw RegistryError.transferTooSlow(
                host: endpoint.host, blob: d.digest.description, reason: e.reason, done: meter.position, total: d.size)
        }
    }

    func fetchBlob(
        _ endpoint: Endpoint, _ d: Descriptor, store: some BlobStore, meter: TransferMeter = TransferMeter(),
        progress: (@Sendable (ProgressEvent) -> Void)?
    ) async throws {
        let name = RegistryClient.shortName(d.digest)
        guard
            let file = try await store.writer(
                for: d,
                onWait: {
                    progress?(.blobWaiting(blob: name))
                })
        else {
            progress?(.blobPresent(blob: name, bytes: d.size))
            return
        }
        defer { file.close() }
        do {
            try await download(endpoint, d, file: file, name: name, meter: meter, progress: progress)
        } catch {
            // Nothing worth resuming: don't leave an empty .partial behind.
            if (try? file.currentSize()) == 0 { file.discard() }
            throw error
        }
    }

    private func download(
        _ endpoint: Endpoint, _ d: Descriptor, file: any BlobWriter, name: String, meter: TransferMeter,
        progress: (@Sendable (ProgressEvent) -> Void)?
    ) async throws {
        var offset = try file.currentSize()
        if offset > d.size { try file.truncate(); offset = 0 }
        var hasher = BlobHasher(algorithm: d.digest.algorithm)
        if offset > 0 { try file.readPrefix(offset) { hasher.update($0) } }
        var pipe = PipelinedHasher(hasher)
        defer { pipe.cancel() }
        var resumed = offset > 0
        var restartedAfterMismatch = false
        var failures = 0
        var rangeRestarts = 0
        var totalConnections = 0
        let path = "/v2/\(endpoint.repository)/blobs/\(d.digest)"
        progress?(.blobStarted(blob: name, bytes: d.size, resumedAt: offset))

        func restartFromZero() throws {
            try file.truncate(); offset = 0
            pipe.cancel()
            pipe = PipelinedHasher(BlobHasher(algorithm: d.digest.algorithm)); resumed = false
        }

        while true {
            try Task.checkCancellation()
            if offset == d.size {
                let got = pipe.finalize()
                if got == d.digest {
                    try file.commit(size: d.size)
                    progress?(.blobVerified(blob: name, bytes: d.size))
                    return
                }
                if resumed && !restartedAfterMismatch {
                    logger.warning("\(name): digest mismatch after a resumed download; restarting from 0")
                    restartedAfterMismatch = true
                    try restartFromZero()
                    continue
                }
                file.discard()
                throw RegistryError.digestMismatch(expected: d.digest, actual: got)
            }
            totalConnections += 1
            if totalConnections > options.maxAttempts * 4 {
                throw RegistryError.unreachable(host: endpoint.host, reason: "too many interrupted connections for \(d.digest)")
            }
            var headers: HTTPHeaders = ["Accept": "*/*"]
            if offset > 0 { headers.add(name: "Range", value: "bytes=\(offset)-") }
            let (response, origin) = try await registryGET(endpoint, path: path, headers: headers, timeout: .hours(24))
            let code = Int(response.status.code)
            switch code {
            case 200:
                if offset > 0 {
                    logger.info("\(name): \(origin.hostPort) ignored the Range request; restarting from 0")
                    try restartFromZero()
                }
                if let len = response.headers.first(name: "Content-Length").flatMap(Int64.init), len > d.size {
                    await RegistryClient.discard(response)
                    file.discard()
                    throw RegistryError.sizeMismatch(
                        digest: d.digest.description, expected: d.size,
                        detail: "the server announces \(len)")
                }
            case 206:
                let cr = ContentRange(response.headers.first(name: "Content-Range"))
                guard offset > 0, let cr, cr.start == offset, cr.end == d.size - 1, cr.total == nil || cr.total == d.size else {
                    await RegistryClient.discard(response)
                    rangeRestarts += 1
                    guard rangeRestarts <= 2 else {
                        throw RegistryError.invalidResponse("\(origin.hostPort) keeps answering \(d.digest) with a wrong Content-Range")
                    }
                    logger.info("\(name): unexpected Content-Range from \(origin.hostPort); restarting from 0")
                    try restartFromZero()
                    continue
                }
            case 416:
                await RegistryClient.discard(response)
                rangeRestarts += 1
                guard rangeRestarts <= 2 else {
                    throw RegistryError.invalidResponse("\(origin.hostPort) refuses ranges for \(d.digest)")
                }
                try restartFromZero()
                continue
            case 404:
                await RegistryClient.discard(response)
                throw RegistryError.blobNotFound(digest: d.digest.description, repository: endpoint.repository)
            case 401, 403:
                await RegistryClient.discard(response)
                throw RegistryError.authRefused(host: origin.hostPort, status: code, detail: "blob \(d.digest)")
            default:
                await RegistryClient.discard(response)
                throw RegistryError.unexpectedStatus(host: origin.hostPort, status: code, what: "blob \(d.digest)")
            }

            let before = offset
            meter.begin(at: offset)
            defer { meter.end() }
            do {
                var lastReport = offset
                for try await chunk in response.body {
                    meter.add(chunk.readableBytes)
                    let n = Int64(chunk.readableBytes)
                    guard offset + n <= d.size else {
                        file.discard()
                        throw RegistryError.sizeMismatch(
                            digest: d.digest.description, expected: d.size,
                            detail: "the server sent more")
                    }
                    try chunk.withUnsafeReadableBytes { buf in try file.write(buf, at: offset) }
                    pipe.update(chunk)
                    offset += n
                    if offset - lastReport >= 256 << 10 || offset == d.size {
                        lastReport = offset
                        progress?(.blobBytes(blob: name, done: offset, total: d.size))
                    }
                }
            } catch let e as RegistryError {
                throw e
            } catch let e as SystemError {
                if e.errno == ENOSPC || e.errno == EDQUOT {
                    file.discard()
                    throw RegistryError.io(file.noSpaceMessage(blob: name, size: d.size))
                }
                throw RegistryError.io("\(name): \(e.description)")
            } catch {
                if error is CancellationError || Task.isCancelled { throw CancellationError() }
                if offset > before { failures = 0 }
                failures += 1
                guard failures < options.maxAttempts else {
                    throw RegistryError.unreachable(
                        host: origin.hostPort,
                        reason: "download of \(d.digest) interrupted: \(RegistryClient.describe(error))")
                }
                resumed = resumed || offset > 0
                let delay = backoff(failures)
                logger.info(
                    "\(name): \(RegistryClient.describe(error)) at \(offset)/\(d.size); resuming in \(Format.fixed(delay))s")
                progress?(.blobResuming(blob: name, at: offset, total: d.size))
                try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                continue
            }
            // A cancelled body (Ctrl-C, the transfer watchdog, the pull's deadline) may end
            // like a complete one: keep what arrived for the next pull.
            try Task.checkCancellation()
            if offset < d.size {
                file.discard()
                throw RegistryError.sizeMismatch(
                    digest: d.digest.description, expected: d.size,
                    detail: "the server sent only \(offset)")
            }
        }
    }
}
