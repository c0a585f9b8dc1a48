using NativeSparsity.Experiments.Training;
using NativeSparsity.Models.BuiltIn;

namespace NativeSparsity.Experiments.Commands;

/// <summary>
/// The one place a command's checkpoint argument becomes a folder: an existing folder is taken as
/// it is; a built-in model's name (minilm-l6, arctic-xs) becomes its converted folder in the cache
/// ($NSPARSE_CACHE/models/NAME, converted on first use); anything else is left for the loader to
/// report as a missing folder.
/// </summary>
public static class CheckpointResolver
{
    public static string Help => $"a checkpoint folder or a built-in model ({BuiltInModels.Names}; see `nsparse models`)";

    public static string CacheRoot => Path.Combine(PretrainRun.DefaultCacheFolder, "models");

    public static string Resolve(string nameOrFolder, Action<string>? say = null)
    {
        if (Directory.Exists(nameOrFolder)) return nameOrFolder;
        var model = BuiltInModels.Find(nameOrFolder);
        return model == null ? nameOrFolder : BuiltInModels.Ensure(model, CacheRoot, say ?? Console.Error.WriteLine);
    }
}
