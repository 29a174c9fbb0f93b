import AsyncHTTPClient
import FoundationEssentials
import NIOCore
import NIOHTTP1
import OCI
import UDockerSystem

/// Bearer tokens per registry and scope, Basic credentials per registry. Lives as long as the
/// client, so one pull reuses one token for its manifest and all its blobs.
actor AuthCache {
    private var bearer: [String: String] = [:]
    private var basic: [String: String] = [:]
    private var schemeOverride: [String: String] = [:]

    func header(host: String, scope: String) -> String? {
        if let t = bearer["\(host) \(scope)"] { return "Bearer \(t)" }
        if let b = basic[host] { return "Basic \(b)" }
        return nil
    }
    func setBearer(_ token: String, host: String, scope: String) { bearer["\(host) \(scope)"] = token }
    func setBasic(_ auth: String, host: String) { basic[host] = auth }
    /// Repository names chosen after a `library/` fallback, per "host typed-name".
    private var repositories: [String: String] = [:]
    func repository(for key: String) -> String? { repositories[key] }
    func setRepository(_ r: String, for key: String) { repositories[key] = r }
    func scheme(for host: String) -> String? { schemeOverride[host] }
    func setScheme(_ s: String, for host: String) { schemeOverride[host] = s }
}

extension RegistryClient {
    /// A GET on the registry with its authentication: anonymous or cached credentials first; on a
    /// 401 from the registry, answer the challenge once (Bearer token or Basic) and retry; a second
    /// 401 fails. Returns only non-401 responses.
    func registryGET(
        _ endpoint: Endpoint, path: String, headers: HTTPHeaders = [:],
        timeout: TimeAmount = .seconds(300)
    ) async throws -> (response: HTTPClientResponse, origin: Origin) {
        var answered = false
        while true {
            let authorization = await auth.header(host: endpoint.host, scope: endpoint.scope)
            let (response, origin, fromRegistry) = try await send(
                url: endpoint.base + path, headers: headers,
                authOrigin: endpoint.origin,
                authorization: authorization, timeout: timeout)
            let code = Int(response.status.code)
            guard code == 401 else { return (response, origin) }
            let challengeHeader = response.headers.first(name: "WWW-Authenticate")
            await RegistryClient.discard(response)
            let challenge = challengeHeader.flatMap(AuthChallenge.init)
            guard fromRegistry else {
                throw RegistryError.authRefused(host: origin.hostPort, status: 401, detail: "after a redirect away from \(endpoint.host)")
            }
            if answered {
                let detail = challenge?.parameters["error"].map {
                    $0 == "insufficient_scope"
                        ? "insufficient scope for \(endpoint.repository) (does the image exist? are you logged in?)" : $0
                }
                throw RegistryError.authRefused(host: endpoint.host, status: 401, detail: detail)
            }
            answered = true
            logger.debug(
                "\(endpoint.host) asks for authentication: \(challenge.map { c in ([c.scheme] + ["realm", "service", "scope"].compactMap { k in c.parameters[k].map { "\(k)=\($0)" } }).joined(separator: " ") } ?? "no usable challenge")"
            )
            guard let challenge else {
                throw RegistryError.authRefused(host: endpoint.host, status: 401, detail: "no usable WWW-Authenticate challenge")
            }
            try await answer(challenge, endpoint: endpoint)
        }
    }

    private func credentials(for endpoint: Endpoint) -> String? {
        options.credentials.authorization(forRegistry: endpoint.host)
            ?? (endpoint.origin.port == 443 ? options.credentials.authorization(forRegistry: "https://\(endpoint.origin.host)") : nil)
    }

    /// May we send Basic credentials to this origin? Only over TLS, or to the local machine.
    private static func mayCarryBasic(_ origin: Origin) -> Bool { origin.scheme == "https" || origin.isLoopback }

    /// A registry names its token service freely, and udocker sends what that service answers
    /// back to the registry: the realm passes the redirect policy (no public registry may point
    /// it at loopback, link-local or private addresses, nor through a proxy at a name only the
    /// proxy's network knows). Used for pulls and for `login`.
    func checkRealm(_ realm: Origin, of registry: Origin) throws {
        if let refusal = inwardRedirectRefusal(
            from: registry.host, to: realm.host, what: "token realm", viaProxy: proxies.proxy(for: realm) != nil)
        {
            throw RegistryError.redirectRefused(refusal)
        }
    }

    func answer(_ challenge: AuthChallenge, endpoint: Endpoint) async throws {
        let creds = credentials(for: endpoint)
        switch challenge.scheme {
        case "bearer":
            guard let realm = challenge.realm, var components = URLComponents(string: realm),
                let realmOrigin = Origin(realm)
            else {
                throw RegistryError.authRefused(host: endpoint.host, status: 401, detail: "Bearer challenge without a valid realm")
            }
            try checkRealm(realmOrigin, of: endpoint.origin)
            var query = components.queryItems ?? []
            if let service = challenge.parameters["service"] { query.append(URLQueryItem(name: "service", value: service)) }
            query.append(URLQueryItem(name: "scope", value: challenge.parameters["scope"] ?? endpoint.scope))
            components.queryItems = query
            guard let tokenURL = components.url?.absoluteString else {
                throw RegistryError.authRefused(host: endpoint.host, status: 401, detail: "bad token realm")
            }
            var basic: String?
            if let creds {
                if RegistryClient.mayCarryBasic(realmOrigin) {
                    basic = "Basic \(creds)"
                } else {
                    logger.warning("not sending credentials to \(realmOrigin.hostPort) over plain http")
                }
            }
            logger.debug("requesting a token from \(realmOrigin.hostPort) \(basic == nil ? "anonymously" : "with stored credentials")")
            let (response, origin, _) = try await send(
                url: tokenURL, headers: ["Accept": "application/json"],
                authOrigin: realmOrigin, authorization: basic,
                timeout: .seconds(120))
            let code = Int(response.status.code)
            guard code == 200 else {
                await RegistryClient.discard(response)
                if code == 401 || code == 403 {
                    throw RegistryError.authRefused(
                        host: origin.hostPort, status: code,
                        detail: basic == nil ? "no credentials for \(endpoint.host) (use udocker login)" : "credentials rejected")
                }
                throw RegistryError.unexpectedStatus(host: origin.hostPort, status: code, what: "token request")
            }
            let body = try await RegistryClient.collect(
                response, limit: RegistryClient.tokenLimit, what: "token response", host: origin.hostPort)
            struct TokenReply: Decodable { var token: String?; var access_token: String? }
            guard let reply = try? JSONDecoder().decode(TokenReply.self, from: Data(body)),
                let token = [reply.token, reply.access_token].compactMap({ $0 }).first(where: { !$0.isEmpty })
            else {
                throw RegistryError.invalidResponse("token response from \(origin.hostPort) has no token")
            }
            guard token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
                throw RegistryError.invalidResponse("token from \(origin.hostPort) has invalid characters")
            }
            await auth.setBearer(token, host: endpoint.host, scope: endpoint.scope)
            logger.debug("token received for \(endpoint.scope) (\(token.utf8.count) characters, not shown)")
        case "basic":
            guard let creds else {
                let why = options.credentials.problem(forRegistry: endpoint.host)
                throw RegistryError.credentialsRequired(
                    host: endpoint.host, reason: why.map { "no credentials: \($0)" } ?? "no credentials stored (use udocker login)")
            }
            guard RegistryClient.mayCarryBasic(endpoint.origin) else {
                throw RegistryError.credentialsRequired(host: endpoint.host, reason: "refusing to send credentials over plain http")
            }
            await auth.setBasic(creds, host: endpoint.host)
            logger.debug("answering the Basic challenge of \(endpoint.host) with stored credentials")
        default:
            throw RegistryError.authRefused(
                host: endpoint.host, status: 401, detail: "unsupported authentication scheme '\(challenge.scheme)'")
        }
    }
}
