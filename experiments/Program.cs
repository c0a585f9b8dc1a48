using System.CommandLine;
using NativeSparsity.Experiments.Bench;
using NativeSparsity.Experiments.Commands;

namespace NativeSparsity.Experiments;

public static class Program
{
    public static int Main(string[] args)
    {
        // Exceptions from any command's action reach the one error shape (CommandRunner), not a trace.
        try { return BuildRootCommand().Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false }); }
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
