import AsyncHTTPClient
import FoundationEssentials
import NIOCore
import NIOHTTP1
import OCI
#if canImport(Glibc)
import Glibc
#endif

extension RegistryClient {
    static func isTransient(_ error: Error) -> Bool {
        if let e = error as? HTTPClientError {
            return [
                HTTPClientError.readTimeout, .remoteConnectionClosed, .connectTimeout, .tlsHandshakeTimeout,
                .uncleanShutdown, .writeTimeout, .getConnectionFromPoolTimeout,
            ].contains(e)
        }
        if let e = error as? IOError { return [ECONNRESET, EPIPE, ETIMEDOUT, ECONNABORTED].contains(e.errnoCode) }
        if let e = error as? ChannelError {
            switch e {
            case .eof, .ioOnClosedChannel, .alreadyClosed, .outputClosed, .inputClosed, .connectTimeout: return true
            default: return false
            }
        }
        // Errors of libraries we do not link by name (NIOSSL, NIOPosix connection errors): by text.
        let text = String(describing: error).lowercased()
        if text.contains("refused") || text.contains("certificate") || text.contains("ssl") || text.contains("tls") { return false }
        return text.contains("reset") || text.contains("eof") || text.contains("closed") || text.contains("timed out")
            || text.contains("timeout") || text.contains("broken pipe")
    }

    /// A connection failure through `proxy` that is the proxy's, not the registry's: only the
    /// proxy is connected to, so a refused, unresolvable or silent address is the proxy's; a
    /// proxy that answers CONNECT with an error could not reach the registry. nil otherwise.
    static func proxyFailure(_ error: Error, proxy: String, host: String) -> RegistryError? {
        let shown = redactProxy(proxy)
        if let e = error as? HTTPClientError {
            if e == .proxyAuthenticationRequired {
                return .proxyFailed(proxy: shown, host: host, reason: "the proxy asks for credentials (http://user:password@host:port)")
            }
            if e == .invalidProxyResponse {
                return .proxyFailed(proxy: shown, host: host, reason: "the proxy could not connect to the registry")
            }
        }
        let reason = describe(error)
        let text = String(describing: error).lowercased()
        if reason == "connection refused" || reason == "host name not found" || reason == "connection timed out" {
            return .proxyUnreachable(proxy: shown, host: host, reason: reason)
        }
        if text.contains("socks") { return .proxyFailed(proxy: shown, host: host, reason: "SOCKS handshake failed: \(reason)") }
        return nil
    }

    /// A short human reason for a transport error (never includes request headers).
    static func describe(_ error: Error) -> String {
        if let e = error as? RegistryError { return e.description }
        if let e = error as? HTTPClientError {
            switch e {
            case .connectTimeout: return "connection timed out"
            case .readTimeout: return "no data received (read timeout)"
            case .remoteConnectionClosed: return "connection closed by the server"
            case .tlsHandshakeTimeout: return "TLS handshake timed out"
            case .deadlineExceeded: return "request took too long"
            default: return describeTLS(String(describing: e).lowercased()) ?? String(describing: e)
            }
        }
        if let e = error as? IOError { return String(cString: strerror(e.errnoCode)).lowercased() }
        let text = String(describing: error)
        let lower = text.lowercased()
        if lower.contains("connection refused") || lower.contains("econnrefused") { return "connection refused" }
        if lower.contains("connection reset") || lower.contains("econnreset") { return "connection reset" }
        if lower.contains("nodename nor servname") || lower.contains("name or service not known")
            || lower.contains("name resolution") || lower.contains("no address")
        {
            return "host name not found"
        }
        if let tls = describeTLS(lower) { return tls }
        return String(text.prefix(300))
    }

    /// TLS failures in words (the library's error text stays for -D).
    static func describeTLS(_ lower: String) -> String? {
        let hint = "trust its CA with SSL_CERT_FILE or SSL_CERT_DIR, or use --insecure for a registry you trust"
        if lower.contains("certificate_verify_failed") || lower.contains("unable to get local issuer")
            || lower.contains("self signed") || lower.contains("self-signed") || lower.contains("certificate has expired")
            || lower.contains("unknown ca") || lower.contains("unknown_ca")
        {
            if lower.contains("expired") { return "the server's TLS certificate has expired (\(hint))" }
            return "the server's TLS certificate is not trusted (self-signed or unknown authority): \(hint)"
        }
        if lower.contains("validatehostname") || lower.contains("hostname") && lower.contains("certificate") {
            return "the server's TLS certificate is for another host name (\(hint))"
        }
        if lower.contains("wrong_version_number") || lower.contains("wrong version number") || lower.contains("http_request") {
            return "the server does not speak TLS on this port (a plain http registry? use http:// for it, with --insecure when remote)"
        }
        if lower.contains("handshake") || lower.contains("certificate") || lower.contains("ssl") || lower.contains("tls") {
            return "TLS handshake failed (\(hint))"
        }
        return nil
    }
}
