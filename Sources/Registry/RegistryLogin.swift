import AsyncHTTPClient
import FoundationEssentials
import NIOCore
import NIOHTTP1
import UDockerSystem

/// What `login` learnt from the registry.
public enum LoginCheck: Sendable, Equatable {
    /// The registry (or its token service) accepted the credentials.
    case accepted
    /// `GET /v2/` answered 200 without asking for credentials: nothing could be checked.
    case notRequired
}

extension RegistryClient {
    /// The registry a `login --registry` value names: a URL as given; a bare host over https, or
    /// plain http for a loopback host (as for pulls); nil is the default registry (Docker Hub).
    func loginOrigin(_ registry: String?) throws -> Origin {
        let value = (registry?.isEmpty == false ? registry : nil) ?? options.registryURL ?? RegistryOptions.dockerHubRegistry
        let text: String
        if value.contains("://") { text = value } else { text = (isLoopbackHost(hostPart(of: value)) ? "http://" : "https://") + value }
        guard let origin = Origin(text) else { throw RegistryError.invalidOption("invalid registry '\(value)'") }
        try refusePlainHTTPToRemote(origin)
        return origin
    }

    /// Docker's login check: `GET /v2/`, then answer its challenge with the credentials: a token
    /// request (no scope) to a Bearer realm, or the same GET with Basic. Throws `authRefused`
    /// when the registry or its token service refuses them.
    public func verifyLogin(registry: String?, username: String, password: String) async throws -> LoginCheck {
        let origin = try loginOrigin(registry)
        let basic = "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
        let base = "\(origin.scheme)://\(origin.hostPort)"
        let (first, _, _) = try await send(
            url: base + "/v2/", headers: [:], authOrigin: origin, authorization: nil,
            timeout: .seconds(60))
        let code = Int(first.status.code)
        let header = first.headers.first(name: "WWW-Authenticate")
        await RegistryClient.discard(first)
        if code == 200 { return .notRequired }
        guard code == 401 else {
            throw RegistryError.unexpectedStatus(host: origin.hostPort, status: code, what: "GET /v2/ (is it a registry?)")
        }
        guard let challenge = header.flatMap(AuthChallenge.init) else {
            throw RegistryError.authRefused(host: origin.hostPort, status: 401, detail: "no usable WWW-Authenticate challenge")
        }
        let target: Origin
        let url: String
        switch challenge.scheme {
        case "bearer":
            guard let realm = challenge.realm, var components = URLComponents(string: realm), let realmOrigin = Origin(realm) else {
                throw RegistryError.authRefused(host: origin.hostPort, status: 401, detail: "Bearer challenge without a valid realm")
            }
            try checkRealm(realmOrigin, of: origin)
            var query = components.queryItems ?? []
            if let service = challenge.parameters["service"] { query.append(URLQueryItem(name: "service", value: service)) }
            query.append(URLQueryItem(name: "account", value: username))
            components.queryItems = query
            guard let u = components.url?.absoluteString else {
                throw RegistryError.authRefused(host: origin.hostPort, status: 401, detail: "bad token realm")
            }
            target = realmOrigin; url = u
        case "basic":
            target = origin; url = base + "/v2/"
        default:
            throw RegistryError.authRefused(
                host: origin.hostPort, status: 401, detail: "unsupported authentication scheme '\(challenge.scheme)'")
        }
        guard target.scheme == "https" || target.isLoopback else {
            throw RegistryError.credentialsRequired(host: target.hostPort, reason: "refusing to send credentials over plain http")
        }
        logger.debug("checking the credentials of \(username) with \(target.hostPort) (\(challenge.scheme))")
        let (reply, replyOrigin, _) = try await send(
            url: url, headers: ["Accept": "application/json"], authOrigin: target,
            authorization: basic, timeout: .seconds(60))
        let status = Int(reply.status.code)
        await RegistryClient.discard(reply)
        switch status {
        case 200: return .accepted
        case 401, 403:
            throw RegistryError.authRefused(
                host: replyOrigin.hostPort, status: status, detail: "wrong user name or password for \(origin.hostPort)")
        default:
            throw RegistryError.unexpectedStatus(host: replyOrigin.hostPort, status: status, what: "the login check")
        }
    }
}
