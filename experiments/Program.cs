using System.CommandLine;
using System.CommandLine.Invocation;
using NativeSparsity.Experiments.Bench;
using NativeSparsity.Experiments.Commands;

namespace NativeSparsity.Experiments;

public static class Program
{
    public static int Main(string[] args)
    {
        // Exceptions from any command's action reach the one error shape (CommandRunner), not a trace.
        try
        {
            // A bare `nsparse` shows the commands rather than an error.
            var parsed = BuildRootCommand().Parse(args.Length == 0 ? new[] { "--help" } : args);
            // A bad command line is the one error shape too: a line "error: ..." per problem and exit 2,
            // where System.CommandLine would print the whole help and exit 1 (--help itself still works).
            if (parsed.Action is ParseErrorAction)
            {
                foreach (var error in parsed.Errors) Console.Error.WriteLine($"error: {CommandRunner.PlainTypes(error.Message)}");
                return 2;
            }
            return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) { return CommandRunner.Report(e); }
    }

    public static RootCommand BuildRootCommand()
    {
        var root = new RootCommand(
            "nsparse: essential sparsity in pre-trained transformers, on the CPU or an NVIDIA GPU, with no Python.");
        root.Subcommands.Add(PretrainCommand.Build());
        root.Subcommands.Add(FinetuneCommand.Build());
        root.Subcommands.Add(StudyCommand.Build());
        root.Subcommands.Add(InspectCommand.Build());
        root.Subcommands.Add(CompressCommand.Build(compress: true));
        root.Subcommands.Add(CompressCommand.Build(compress: false));
        root.Subcommands.Add(FillMaskCommand.Build());
        root.Subcommands.Add(EmbedCommand.Build());
        root.Subcommands.Add(ImportCommand.Build());
        root.Subcommands.Add(ModelsCommand.Build());
        root.Subcommands.Add(BenchCommand.Build());
        return root;
    }
}
