import AsyncHTTPClient
import FoundationEssentials
import NIOCore
import NIOHTTP1
import UDockerSystem

/// One line of `udocker search`.
public struct SearchResult: Sendable, Equatable {
    public var name: String
    public var official: Bool
    public var description: String
    public var stars: String

    public init(name: String, official: Bool = false, description: String = "", stars: String = "") {
        self.name = name; self.official = official; self.description = description; self.stars = stars
    }
}

extension RegistryClient {
    /// A query parameter value: letters, digits (any script, as `CharacterSet.alphanumerics`) and
    /// `-_.` kept, every other character's UTF-8 bytes as `%XX`.
    static func percentEncoded(_ term: String) -> String {
        let hex = Array("0123456789ABCDEF".unicodeScalars)
        var out = ""
        for scalar in term.unicodeScalars {
            let p = scalar.properties
            if p.isAlphabetic || p.numericType != nil || p.generalCategory == .nonspacingMark || "-_.".unicodeScalars.contains(scalar) {
                out.unicodeScalars.append(scalar)
            } else {
                for b in String(scalar).utf8 {
                    out += "%"; out.unicodeScalars.append(hex[Int(b >> 4)]); out.unicodeScalars.append(hex[Int(b & 15)])
                }
            }
        }
        return out
    }

    static let dockerHubIndexHosts: Set<String> = ["hub.docker.com", "index.docker.io", "docker.io", "registry.hub.docker.com"]

    /// The scheme a registry named as `host[:port]` is spoken to with: `http` on loopback,
    /// `https` elsewhere (the rule of image names).
    public static func defaultScheme(forHost hostPort: String) -> String {
        isLoopbackHost(hostPart(of: hostPort)) ? "http" : "https"
    }

    /// Whether `url` names Docker Hub's index (which has a search API; registries have not).
    public static func isDockerHubIndex(_ url: String) -> Bool {
        guard let o = parseBaseURL(url) else { return false }
        return dockerHubIndexHosts.contains(o.host) || CredentialStore.dockerHubAliases.contains(o.host)
    }

    /// Docker Hub's search API (`/v2/search/repositories?query=&page_size=&page=`), at most
    /// `limit` results, following its pages.
    public func searchDockerHub(_ term: String, index: String, limit: Int = 100) async throws -> [SearchResult] {
        guard var origin = RegistryClient.parseBaseURL(index) else { throw RegistryError.invalidOption("invalid index URL '\(index)'") }
        if origin.host == "index.docker.io" || origin.host == "docker.io" { origin = Origin("https://hub.docker.com")! }
        let query = Self.percentEncoded(term)
        var results: [SearchResult] = []
        var page = 1
        while results.count < limit && page <= 20 {
            let url =
                "\(origin.scheme)://\(origin.hostPort)/v2/search/repositories?query=\(query)&page_size=\(min(100, limit))&page=\(page)"
            let (response, from, _) = try await send(
                url: url, headers: ["Accept": "application/json"], authOrigin: origin,
                authorization: nil, timeout: .seconds(60))
            let code = Int(response.status.code)
            guard code == 200 else {
                await RegistryClient.discard(response)
                if code == 404 && page > 1 { break }
                throw RegistryError.unexpectedStatus(host: from.hostPort, status: code, what: "search")
            }
            let body = try await RegistryClient.collect(
                response, limit: RegistryClient.manifestLimit, what: "search results", host: from.hostPort)
            guard let obj = JSONAny.object(body),
                let list = obj["results"] as? [[String: Any]]
            else {
                throw RegistryError.invalidResponse("search results from \(from.hostPort) are not JSON")
            }
            for r in list { results.append(RegistryClient.searchResult(r)) }
            if list.isEmpty || obj["next"] == nil || obj["next"] is JSONNull { break }
            page += 1
        }
        return Array(results.prefix(limit))
    }

    /// udocker's reading of one search result: `name`/`repo_name`, `is_official`,
    /// `description`/`short_description` (first line, printable ASCII), `star_count`.
    static func searchResult(_ r: [String: Any]) -> SearchResult {
        let name = Format.printable((r["name"] as? String) ?? (r["repo_name"] as? String) ?? "")
        let official = (r["is_official"] as? Bool) ?? false
        var description = ""
        if let d = (r["description"] as? String) ?? (r["short_description"] as? String) {
            let firstLine = d.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            description = String(firstLine.unicodeScalars.filter { $0.value >= 0x20 && $0.value < 0x7f }.map(Character.init))
        }
        let stars = (r["star_count"] as? Int).map(String.init) ?? ""
        return SearchResult(name: name, official: official, description: description, stars: stars)
    }

    /// The repositories of a registry (`GET /v2/_catalog`, `Link` pagination) whose name
    /// contains `term` (case-insensitive; every repository for an empty term).
    public func searchCatalog(_ term: String, registry: String) async throws -> [String] {
        guard let origin = RegistryClient.parseBaseURL(registry) else {
            throw RegistryError.invalidOption("invalid registry URL '\(registry)'")
        }
        try refusePlainHTTPToRemote(origin)
        let endpoint = Endpoint(origin: origin, repository: "", display: origin.hostPort, scopeOverride: "registry:catalog:*")
        let names = try await pagedList(
            endpoint, path: "/v2/_catalog?n=1000", key: "repositories", what: "catalog",
            maxPages: 1000
        ) { code, from in
            code == 404
                ? .invalidOption("\(from.hostPort) offers no catalog to search (HTTP 404)")
                : .unexpectedStatus(host: from.hostPort, status: code, what: "catalog")
        }
        let t = term.lowercased()
        return names.filter { t.isEmpty || $0.lowercased().contains(t) }
    }

    /// A list spread over `Link: <…>; rel="next"` pages (`/v2/_catalog`, `/v2/<repo>/tags/list`):
    /// the strings under `key` of every page (absent or null: none), at most `maxPages` pages. A
    /// status other than 200 becomes the error `failure` returns.
    func pagedList(
        _ endpoint: Endpoint, path first: String, key: String, what: String, maxPages: Int,
        failure: (_ status: Int, _ from: Origin) -> RegistryError
    ) async throws -> [String] {
        var path = first
        var items: [String] = []
        for _ in 0..<maxPages {
            let (response, from) = try await registryGET(endpoint, path: path, headers: ["Accept": "application/json"])
            let code = Int(response.status.code)
            guard code == 200 else {
                await RegistryClient.discard(response)
                throw failure(code, from)
            }
            let link = response.headers.first(name: "Link")
            let body = try await RegistryClient.collect(response, limit: RegistryClient.manifestLimit, what: what, host: from.hostPort)
            let page = JSONAny.object(body)
            let value = page?[key]
            let list = value is JSONNull || (page != nil && value == nil) ? [] : value as? [String]
            guard let list else { throw RegistryError.invalidResponse("\(what) from \(from.hostPort) is not JSON") }
            items += list
            // Link: </v2/x/tags/list?last=foo&n=100>; rel="next"
            guard let next = RegistryClient.nextLink(link) else { break }
            path = next
        }
        return items
    }

    /// The path of a `Link: </v2/…>; rel="next"` header (same origin only).
    static func nextLink(_ link: String?) -> String? {
        guard let link, link.contains("rel=\"next\""), let lt = link.firstIndex(of: "<"), let gt = link.firstIndex(of: ">"), lt < gt else {
            return nil
        }
        let next = String(link[link.index(after: lt)..<gt])
        return next.hasPrefix("/v2/") ? next : nil
    }
}
