import AsyncHTTPClient
import FoundationEssentials
import NIOCore
import NIOHTTP1
#if canImport(Glibc)
import Glibc
#endif

/// A download that did not arrive: `reason` in words ("host name not found", "HTTP 404"), and
/// whether trying again later may help (the server answered or was reached, then failed: 408,
/// 429, 5xx, a connection lost mid-way), as opposed to an address that does not resolve, refuses
/// or stays silent, an untrusted certificate, or a file that is not there.
public struct DownloadFailure: Error, CustomStringConvertible, Sendable {
    public let reason: String
    public let mayPass: Bool
    public var description: String { reason }
}

extension RegistryClient {
    /// Downloads a plain http(s) URL (e.g. a rootfs tarball for `import URL`) into `path`, which
    /// must not exist. Plain http only to this host (loopback) or with `--insecure`, as for
    /// registries; redirects are followed (at most 5, never from https down to http, never
    /// inward), no credentials are ever sent. The file is removed again on any failure.
    public func download(url: String, to path: String) async throws {
        var current = url
        for _ in 0...Self.maxRedirects {
            if let origin = Origin(current) { try refusePlainHTTPDownload(origin) }
            var request = HTTPClientRequest(url: current)
            request.method = .GET
            let response: HTTPClientResponse
            do {
                response = try await client(for: current).execute(request, timeout: .seconds(3600))
            } catch {
                throw Self.downloadFailure(
                    error, origin: Origin(current), redirected: current != url, proxy: Origin(current).flatMap { proxies.proxy(for: $0) })
            }
            if (300..<400).contains(Int(response.status.code)), let loc = response.headers.first(name: "Location") {
                guard let next = URL(string: loc, relativeTo: URL(string: current))?.absoluteString,
                    next.hasPrefix("http://") || next.hasPrefix("https://")
                else {
                    throw RegistryError.invalidOption("bad redirect from \(RegistryClient.redact(current))")
                }
                if current.lowercased().hasPrefix("https://") && next.lowercased().hasPrefix("http://") {
                    throw RegistryError.invalidOption("refusing redirect from https to plain http (\(RegistryClient.redact(next)))")
                }
                if let from = Origin(current), let to = Origin(next),
                    let refusal = inwardRedirectRefusal(from: from.host, to: to.host, viaProxy: proxies.proxy(for: to) != nil)
                {
                    throw RegistryError.redirectRefused(refusal)
                }
                current = next
                continue
            }
            guard response.status == .ok else {
                let code = Int(response.status.code)
                throw DownloadFailure(
                    reason: "HTTP \(code) \(response.status.reasonPhrase) from \(Origin(current)?.hostPort ?? "the server")",
                    mayPass: Self.isRetryableStatus(code))
            }
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw RegistryError.io("cannot create \(path): \(String(cString: strerror(errno)))") }
            do {
                for try await chunk in response.body {
                    try chunk.withUnsafeReadableBytes { raw in
                        var off = 0
                        while off < raw.count {
                            let n = write(fd, raw.baseAddress! + off, raw.count - off)
                            if n < 0 {
                                if errno == EINTR { continue }; throw RegistryError.io("write \(path): \(String(cString: strerror(errno)))")
                            }
                            off += n
                        }
                    }
                }
                close(fd)
            } catch {
                close(fd)
                unlink(path)
                if error is RegistryError || error is CancellationError { throw error }
                throw DownloadFailure(
                    reason: "connection lost while downloading: \(Self.describe(error))", mayPass: Self.isTransient(error))
            }
            return
        }
        throw RegistryError.invalidOption("too many redirects downloading \(url)")
    }

    /// A transport error before the response head as a `DownloadFailure`: the proxy's fault when a
    /// proxy was in the way and failed, else the reason in words; only a connection lost after the
    /// server was reached may pass.
    /// `redirected`: the host is named (the caller names only the URL it asked for).
    static func downloadFailure(_ error: Error, origin: Origin?, redirected: Bool, proxy: String?) -> Error {
        if error is CancellationError { return error }
        if let proxy, let origin, let failure = proxyFailure(error, proxy: proxy, host: origin.hostPort) { return failure }
        // Silent before answering (no connection, no handshake, no response head): trying again
        // would only wait as long again.
        let silent: Bool
        if let e = error as? HTTPClientError {
            silent = e == .connectTimeout || e == .tlsHandshakeTimeout || e == .readTimeout
        } else if let e = error as? ChannelError, case .connectTimeout = e {
            silent = true
        } else {
            silent = false
        }
        let host = redirected ? origin.map { "\($0.hostPort): " } ?? "" : ""
        return DownloadFailure(reason: host + describe(error), mayPass: !silent && isTransient(error))
    }
}
