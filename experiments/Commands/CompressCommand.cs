using System.CommandLine;
using NativeSparsity.Engine.IO;
using NativeSparsity.Models.Transformer;

namespace NativeSparsity.Experiments.Commands;

/// <summary>`nsparse compress` and `nsparse decompress`: a checkpoint folder with its prunable matrices in sparse-bitmask layout, or dense again.</summary>
public static class CompressCommand
{
    public static Command Build(bool compress)
    {
        var cmd = new Command(compress ? "compress" : "decompress", compress
            ? "Copy a checkpoint (BERT or ViT, ours or Hugging Face's) with its prunable matrices in compressed-tensors' sparse-bitmask layout " +
              "(kept values, a bit per weight, row offsets) and the compression declared in config.json; every nsparse command reads it."
            : "Copy a checkpoint with every tensor dense again (bit for bit what was compressed) and the compression removed from config.json.");
        var dir = new Argument<string>("checkpoint") { Description = "Checkpoint folder (config.json + model.safetensors)." };
        var output = new Option<string>("--out") { Description = "Folder to write (replaced atomically if it exists); other files are copied unchanged.", Required = true };
        cmd.Arguments.Add(dir);
        cmd.Options.Add(output);
        cmd.SetAction(r => CommandRunner.Run(() => Run(r.GetValue(dir)!, r.GetValue(output)!, compress)));
        return cmd;
    }

    public static void Run(string source, string target, bool compress)
    {
        using var folderLock = FolderLock.AcquireReplaced(target, compress ? "compress" : "decompress");
        var before = CompressedCheckpoint.MeasureSizes(source);
        var summary = CompressedCheckpoint.Rewrite(source, target, compress);
        var after = CompressedCheckpoint.MeasureSizes(target);
        Console.WriteLine($"{target}: model.safetensors {CompressedCheckpoint.FormatBytes(before.OnDisk)} -> {CompressedCheckpoint.FormatBytes(after.OnDisk)}" +
                          (summary == null ? ", every tensor dense" : $", {summary.Targets.Count} matrices in sparse-bitmask layout at {summary.Sparsity:P1} sparsity"));
    }
}
