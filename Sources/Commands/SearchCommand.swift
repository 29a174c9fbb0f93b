import OCI
import ArgumentParser
import FoundationEssentials
import Registry
import UDockerSystem

/// `search`: Docker Hub's search API when the index is Docker Hub; on any other registry its
/// v2 catalog (`/v2/_catalog`, every page) filtered by the expression. `--list-tags` lists the
/// tags of one repository. Output in udocker's columns; never pauses (`-a` is accepted).
struct SearchCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "search", abstract: "Search a registry or Docker Hub for images",
        discussion: "search [-a] [--no-trunc] [--list-tags] [--index=url] [--registry=url] [--httpproxy=url] <expression>")
    @Flag(name: .customShort("a"), help: "do not pause (udocker's; output never pauses here)") var noPause = false
    @Flag(name: .customLong("no-trunc"), help: "do not truncate columns") var noTrunc = false
    @Flag(name: .customLong("list-tags"), help: "list the tags of the repository <expression>") var listTags = false
    @OptionGroup var registryFlags: RegistryFlags
    @Argument(help: "expression") var expression: String

    static var needsRepository: Bool { false }

    func execute(_ context: CommandContext) async throws -> Int32 {
        try await ImagePuller(context: context, flags: registryFlags).withRegistryClient { client, options in
            try await search(client, options: options)
        }
        return 0
    }

    private func search(_ client: RegistryClient, options: RegistryOptions) async throws {
        if listTags {
            for tag in try await client.listTags(try ImageReference(parsing: expression)) { print(Format.printable(tag)) }
            return
        }
        let fmt: (String, String, String, String) -> String = { name, official, description, stars in
            noTrunc
                ? "\(pad(name, 55)) \(lpad(official, 8)) \(pad(description, 70)) \(lpad(stars, 5))"
                : "\(pad(String(name.prefix(80)), 55)) \(lpad(String(official.prefix(8)), 8)) \(pad(String(description.prefix(70)), 70)) \(lpad(String(stars.prefix(5)), 5))"
        }
        let results: [SearchResult]
        var target = Self.target(index: registryFlags.index, registry: registryFlags.registry, options: options)
        var expression = self.expression
        if registryFlags.index?.isEmpty != false && registryFlags.registry?.isEmpty != false,
            let (host, url, rest) = Self.splitRegistry(expression)
        {
            target = options.registryMap[host.lowercased()] ?? url
            expression = rest
        }
        if RegistryClient.isDockerHubIndex(target) {
            results = try await client.searchDockerHub(expression, index: target)
        } else {
            results = try await client.searchCatalog(expression, registry: target).map { SearchResult(name: Format.printable($0)) }
        }
        let lines =
            [fmt("NAME", "OFFICIAL", "DESCRIPTION", "STARS")]
            + results.map { fmt($0.name, $0.official ? "[OK]" : "----", $0.description, $0.stars) }
        print(lines.joined(separator: "\n"))
    }

    /// `quay.io/expr`, `127.0.0.1:5000/expr`, `https://host/expr` (udocker's `search` help form:
    /// a first component with a dot names the registry) → (registry, expression). udocker takes
    /// only names with a dot; `host:port` and `localhost` count here too, as in image names.
    static func splitRegistry(_ expression: String) -> (host: String, url: String, expression: String)? {
        var rest = Substring(expression)
        var scheme = ""
        if let r = rest.firstRange(of: "://") {
            scheme = String(rest[..<r.upperBound])
            rest = rest[r.upperBound...]
        }
        guard let slash = rest.firstIndex(of: "/") else { return nil }
        let host = rest[..<slash]
        guard host.contains(".") || host.contains(":") || host == "localhost" else { return nil }
        let url = (scheme.isEmpty ? RegistryClient.defaultScheme(forHost: String(host)) + "://" : scheme) + host
        return (String(host), url, String(rest[rest.index(after: slash)...]))
    }

    /// Where to search: `--index`, else `--registry`, else a configured index or registry that is
    /// not Docker Hub's default, else Docker Hub.
    static func target(index: String?, registry: String?, options: RegistryOptions) -> String {
        if let index, !index.isEmpty { return index }
        if let registry, !registry.isEmpty { return registry }
        if let i = options.indexURL, !RegistryClient.isDockerHubIndex(i) { return i }
        if let r = options.registryURL { return r }
        return options.indexURL ?? "https://hub.docker.com"
    }
}

private func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s : s + String(repeating: " ", count: width - s.count) }
private func lpad(_ s: String, _ width: Int) -> String { s.count >= width ? s : String(repeating: " ", count: width - s.count) + s }
