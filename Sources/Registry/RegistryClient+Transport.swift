import AsyncHTTPClient
import FoundationEssentials
import NIOCore
import NIOHTTP1
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

extension RegistryClient {
    /// One GET, with retries on 408, 429 and 5xx (but 501/505) and transient network errors
    /// (bounded exponential backoff, honouring Retry-After), and redirects followed by hand. `authorization` goes only to `authOrigin`,
    /// and never again once a redirect has left it.
    func send(
        url: String, headers: HTTPHeaders, authOrigin: Origin, authorization: String?,
        timeout: TimeAmount
    ) async throws -> (response: HTTPClientResponse, origin: Origin, fromAuthOrigin: Bool) {
        var current = url
        var hops = 0
        var attempt = 0
        var leftOrigin = false
        while true {
            try Task.checkCancellation()
            guard let origin = Origin(current) else { throw RegistryError.invalidResponse("bad URL \(RegistryClient.redact(current))") }
            var req = HTTPClientRequest(url: current)
            req.method = .GET
            req.headers = headers
            req.headers.replaceOrAdd(name: "User-Agent", value: options.userAgent)
            let sameOrigin = origin == authOrigin && !leftOrigin
            if sameOrigin, let authorization {
                req.headers.replaceOrAdd(name: "Authorization", value: authorization)
            } else {
                req.headers.remove(name: "Authorization")
            }
            if !sameOrigin { req.headers.remove(name: "Cookie") }
            let response: HTTPClientResponse
            do {
                if attempt == 0 && hops == 0, let p = proxies.proxy(for: origin) {
                    logger.debug("GET \(RegistryClient.redact(current)) through proxy \(RegistryClient.redactProxy(p))")
                }
                response = try await client(for: current).execute(req, timeout: timeout)
            } catch {
                if error is CancellationError || Task.isCancelled { throw CancellationError() }
                attempt += 1
                if RegistryClient.isTransient(error) && attempt < options.maxAttempts {
                    let delay = backoff(attempt)
                    logger.debug(
                        "GET \(RegistryClient.redact(current)): \(RegistryClient.describe(error)); retrying in \(Format.fixed(delay))s"
                    )
                    try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                    continue
                }
                logger.debug("GET \(RegistryClient.redact(current)) failed: \(String(describing: error).prefix(300))")
                if let p = proxies.proxy(for: origin), let refusal = RegistryClient.proxyFailure(error, proxy: p, host: origin.hostPort) {
                    throw refusal
                }
                throw RegistryError.unreachable(host: origin.hostPort, reason: RegistryClient.describe(error))
            }
            let code = Int(response.status.code)
            logger.debug(
                "GET \(RegistryClient.redact(current))\(headers.first(name: "Range").map { " (\($0))" } ?? "")\(sameOrigin && authorization != nil ? " with \(authorization!.split(separator: " ").first ?? "") authorization" : ""): HTTP \(code)"
            )
            switch code {
            case 301, 302, 303, 307, 308:
                guard let loc = response.headers.first(name: "Location"),
                    let next = URL(string: loc, relativeTo: URL(string: current))?.absoluteURL.absoluteString,
                    let nextOrigin = Origin(next)
                else {
                    throw RegistryError.invalidResponse("HTTP \(code) without a usable Location from \(origin.hostPort)")
                }
                await RegistryClient.discard(response)
                hops += 1
                if hops > RegistryClient.maxRedirects { throw RegistryError.tooManyRedirects(RegistryClient.redact(url)) }
                if origin.scheme == "https" && nextOrigin.scheme == "http" && !nextOrigin.isLoopback && !options.insecure {
                    throw RegistryError.invalidResponse("refusing redirect from https to plain http (\(nextOrigin.hostPort))")
                }
                if let refusal = inwardRedirectRefusal(
                    from: origin.host, to: nextOrigin.host, viaProxy: proxies.proxy(for: nextOrigin) != nil)
                {
                    throw RegistryError.redirectRefused(refusal)
                }
                if nextOrigin != authOrigin { leftOrigin = true }
                logger.debug("redirect \(code) to \(nextOrigin.hostPort)")
                current = next
                continue
            case 400 where origin.scheme == "http":
                // A TLS registry asked in plain http (a loopback port of an SSH tunnel is taken
                // for plain http): Go's and nginx's TLS servers answer 400 with a body saying so.
                let body = (try? await RegistryClient.collectQuietly(response, limit: 4096)) ?? []
                if String(decoding: body, as: UTF8.self).lowercased().contains("https") {
                    throw RegistryError.invalidOption(
                        "\(origin.hostPort) speaks https, not plain http (it answered HTTP 400: \"\(RegistryClient.firstLine(body))\"): use --registry=https://\(origin.hostPort) (or UDOCKER_REGISTRY) with the image name without the host, and SSL_CERT_FILE for its CA"
                    )
                }
                // Anything else goes to the caller as it came.
                let replay = HTTPClientResponse(
                    version: response.version, status: response.status, headers: response.headers,
                    body: .bytes(ByteBuffer(bytes: body)))
                return (replay, origin, sameOrigin)
            case let c where RegistryClient.isRetryableStatus(c):
                attempt += 1
                let retryAfter = parseRetryAfter(response.headers.first(name: "Retry-After"))
                await RegistryClient.discard(response)
                guard attempt < options.maxAttempts else {
                    if code == 429 { throw RegistryError.rateLimited(host: origin.hostPort, attempts: attempt, retryAfter: retryAfter) }
                    throw RegistryError.serverError(host: origin.hostPort, status: code, attempts: attempt)
                }
                let delay = min(retryAfter ?? backoff(attempt), options.maxRetryDelay)
                logger.info(
                    "HTTP \(code) from \(origin.hostPort); retrying in \(Format.fixed(delay))s (attempt \(attempt + 1) of \(options.maxAttempts))"
                )
                try await Task.sleep(nanoseconds: UInt64(max(0, delay) * 1e9))
                continue
            default:
                return (response, origin, sameOrigin)
            }
        }
    }

    /// 408, 429 and server errors that may pass (not 501 Not Implemented / 505 Version).
    static func isRetryableStatus(_ code: Int) -> Bool {
        code == 408 || code == 429 || ((500...599).contains(code) && code != 501 && code != 505)
    }

    /// Runs a request whose body is read into memory again when the connection drops while
    /// reading it (at most `maxAttempts` times, with backoff), then lets the error through.
    func retryingLostBody<T>(_ what: String, _ body: () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do { return try await body() } catch let e as RegistryError {
                attempt += 1
                guard case .bodyInterrupted = e, attempt < options.maxAttempts else { throw e }
                let reason = e.reason
                let delay = backoff(attempt)
                logger.info("\(what): \(reason); retrying in \(Format.fixed(delay))s")
                try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
            }
        }
    }

    func backoff(_ attempt: Int) -> Double {
        let base = options.retryBaseDelay * pow(2, Double(max(0, attempt - 1)))
        let jitter = base * Double.random(in: 0..<0.1)
        return min(base + jitter, options.maxRetryDelay)
    }

    static func collect(_ response: HTTPClientResponse, limit: Int, what: String, host: String) async throws -> [UInt8] {
        if let len = response.headers.first(name: "Content-Length").flatMap(Int.init), len > limit {
            throw RegistryError.tooLarge(what: what, limit: limit)
        }
        var out = [UInt8]()
        do {
            for try await chunk in response.body {
                guard out.count + chunk.readableBytes <= limit else { throw RegistryError.tooLarge(what: what, limit: limit) }
                out.append(contentsOf: chunk.readableBytesView)
            }
        } catch let e as RegistryError {
            throw e
        } catch {
            if error is CancellationError { throw error }
            throw RegistryError.bodyInterrupted(host: host, what: what, reason: describe(error))
        }
        return out
    }

    /// Reads and drops a small body so the connection can be reused; gives up past 64 KiB.
    static func discard(_ response: HTTPClientResponse) async {
        _ = try? await collectQuietly(response, limit: errorBodyLimit)
    }

    static func collectQuietly(_ response: HTTPClientResponse, limit: Int) async throws -> [UInt8] {
        var out = [UInt8]()
        for try await chunk in response.body {
            if out.count + chunk.readableBytes > limit { break }
            out.append(contentsOf: chunk.readableBytesView)
        }
        return out
    }

    /// The first line of a small error body, printable, at most 100 characters.
    static func firstLine(_ body: [UInt8]) -> String {
        let text = String(decoding: body.prefix(400), as: UTF8.self)
        let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        return String(line.filter { $0.isASCII && !$0.asciiValue.map { $0 < 0x20 || $0 == 0x7f }! }.prefix(100))
    }

    /// Drops query strings (tokens and signatures live there) from URLs in messages.
    static func redact(_ url: String) -> String {
        guard let q = url.firstIndex(of: "?") else { return url }
        return String(url[..<q]) + "?…"
    }

    /// A proxy URL without its user and password.
    static func redactProxy(_ url: String) -> String {
        guard let at = url.lastIndex(of: "@") else { return url }
        let scheme = url.firstRange(of: "://").map { String(url[..<$0.upperBound]) } ?? ""
        return scheme + "…@" + url[url.index(after: at)...]
    }
}
