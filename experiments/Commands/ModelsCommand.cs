using System.CommandLine;
using NativeSparsity.Models.BuiltIn;

namespace NativeSparsity.Experiments.Commands;

/// <summary>`nsparse models`: the built-in pre-trained models, where they come from and whether they are ready.</summary>
public static class ModelsCommand
{
    public static Command Build()
    {
        var cmd = new Command("models", "List the built-in pre-trained models (usable as --checkpoint NAME): size, parameter counts, licence, source, and whether the package " +
                                        "and the converted cache folder are present. Nothing is downloaded: the build restores the packages, the first use converts.");
        cmd.SetAction(_ => CommandRunner.Run(() => Console.Write(Describe())));
        return cmd;
    }

    public static string Describe()
    {
        var sb = new System.Text.StringBuilder();
        foreach (var m in BuiltInModels.All)
        {
            string? assembly = BuiltInModels.FindAssembly(m);
            string cached = Path.Combine(CheckpointResolver.CacheRoot, m.Name);
            string weights = Path.Combine(cached, Models.Bert.BertCheckpoint.WeightsFile);
            sb.AppendLine($"{m.Name}: {m.Description}");
            sb.AppendLine($"  parameters {m.Parameters:N0} ({m.PrunableParameters:N0} prunable); pooling {m.Pooling.ToString().ToLowerInvariant()}; max length {m.MaxSequenceLength}");
            sb.AppendLine($"  licence: model {m.UpstreamLicence} ({m.Upstream}); NuGet wrapper {m.PackageLicence} ({m.PackageId} {m.PackageVersion}, {m.PackageSource})");
            sb.AppendLine(assembly != null ? $"  package: {assembly} ({new FileInfo(assembly).Length / 1e6:F0} MB)"
                                           : $"  package: not restored (looked under {string.Join(", ", BuiltInModels.PackageRoots())}; run `dotnet restore`)");
            sb.AppendLine(File.Exists(Path.Combine(cached, BuiltInModels.MarkerFile)) && File.Exists(weights)
                ? $"  converted: {cached} ({new FileInfo(weights).Length / 1e6:F0} MB)"
                : $"  converted: not yet (the first use converts it into {cached})");
        }
        return sb.ToString();
    }
}
