import ArgumentParser
import Engines
import Store
import UDockerSystem

struct HelpCommand: UDockerCommand {
    static let configuration = CommandConfiguration(commandName: "help", abstract: "Print help information")
    static var needsRepository: Bool { false }
    @Argument var topic: [String] = []

    func execute(_ context: CommandContext) async throws -> Int32 {
        if let t = topic.first, let type = UDocker.commands[t] { print(type.helpMessage()); return 0 }
        print(Self.text)
        return 0
    }

    /// The general help: the hand-written command list, completed with any command it does not
    /// mention (from the command's own abstract), and the execution modes from `ExecutionMode`.
    static var text: String {
        let unlisted = UDocker.commands.keys.sorted().filter { !isListed($0) }
            .map { "  \(Format.column($0, width: 30)):\(UDocker.commands[$0]!.configuration.abstract)" }
        return generalText.replacing("@MODES@", with: ExecutionMode.helpTable)
            .replacing("@MORE@\n", with: unlisted.map { $0 + "\n" }.joined())
    }

    /// Whether the general help has a line for the command (`help` and `version` are in the syntax lines).
    static func isListed(_ name: String) -> Bool {
        ["help", "version"].contains(name) || generalText.contains("\n  \(name) ")
    }

    static let generalText = """

        Syntax:
          udocker  [general_options] <command>  [command_options]  <command_args>

          udocker [-h|--help|help]        :Display this help and exits
          udocker [-V|--version|version]  :Display udocker and tarball version and exits

        General options common to all commands must appear before the command:
          -D, --debug                   :Debug
          -q, --quiet                   :Less verbosity
          --insecure                    :Allow insecure non authenticated https
          --repo=<directory>            :Use repository at directory
          --allow-root                  :Allow execution by root NOT recommended
          --config=<conf_file>          :Use configuration <conf_file>

        Commands:
          --help [command]              :Command specific help
          showconf                      :Print all configuration options
          doctor [--json]               :Check which execution engines work here

          search <repo/expression>      :Search registry (Docker Hub or catalog) for images
          search --list-tags <repo/image> :List tags of a repository
          pull <repo/image:tag>         :Pull container image from a registry
          create <repo/image:tag>       :Create container from a pulled image
          run <container_id|name>       :Execute created container
          run <repo/image:tag>          :Pull, create and execute container

          images -l                     :List container images
          ps -m                         :List created containers
          name <container_id> <name>    :Give name to container
          rmname <name>                 :Delete name from container
          rename <name> <new_name>      :Change container name
          rm  <container-id|name>       :Delete container
          rmi <repo/image:tag>          :Delete image
          rmi --prune [-f]              :Delete unreferenced layers and leftovers
          rm -f <container>             :Delete container, fixing permissions first
          clone [--name=<name>] <container> :Duplicate container
          tag <repo/image:tag> <repo2/image2:tag2> :Tag image

          inspect -p <repo/image:tag>   :Print image or container metadata
          verify <repo/image:tag>       :Verify a pulled image
          manifest inspect <repo/image:tag> :Print manifest metadata

          protect <repo/image:tag>      :Protect repository
          unprotect <repo/image:tag>    :Unprotect repository
          protect <container>           :Protect container
          unprotect <container>         :Unprotect container

          export -o <tar> <container>   :Export container rootfs (--clone: with metadata)
          import <tar|URL|-> <repo/image:tag> :Import rootfs tar as image
          import --tocontainer <tar>    :Import rootfs tar as container
          import --clone <tar>          :Import container exported with --clone
          load -i <archive>             :Load docker-archive or OCI archive
          save -o <archive> <repo/image:tag>... :Save images as docker-archive

          login                         :Store credentials for a registry (--registry=, --username=, --password-stdin)
          logout                        :Remove stored credentials (-a all)

          install [--force] [--purge]   :Install udockertools (udocker's URLs or UDOCKER_TARBALL); list engine tools
          mkrepo <top-repo-dir>         :Create another repository in location
          setup --execmode=<mode>       :Change container execution mode
          setup --purge <container>     :Remove mount points and bind files
          setup --fixperm <container>   :Fix container file permissions
        @MORE@

        Execution modes (setup --execmode):
        @MODES@

        Examples:
          udocker pull docker.io/library/debian:bookworm
          udocker create --name=deb debian:bookworm
          udocker run --rm -v /tmp:/mnt -w /mnt deb sh -c 'ls'
          udocker setup --execmode=P1 deb

        Notes:
          * The repository is $UDOCKER_DIR (default $HOME/.udocker) and is the
            same format as the Python udocker's: both tools can share it.
        """
}
