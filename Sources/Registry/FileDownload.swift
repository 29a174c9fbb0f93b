import AsyncHTTPClient
import FoundationEssentials
import NIOCore
import NIOHTTP1
#if canImport(Glibc)
import Glibc
#endif

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
            let response = try await client(for: current).execute(request, timeout: .seconds(3600))
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
                throw RegistryError.io("download of \(url) failed: HTTP \(response.status.code)")
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
                throw error
            }
            return
        }
        throw RegistryError.invalidOption("too many redirects downloading \(url)")
    }
}
