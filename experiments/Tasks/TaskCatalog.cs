namespace NativeSparsity.Experiments.Tasks;

/// <summary>Finds a task by name: the embedded WordNet tasks, or a GLUE task from a GLUE data folder.</summary>
public static class TaskCatalog
{
    public static IEnumerable<string> AllNames => WordNetTasks.Names.Concat(GlueTasks.Names);

    public static bool IsGlue(string name) => GlueTasks.Names.Any(n =>
        string.Equals(n, name, StringComparison.OrdinalIgnoreCase) || string.Equals(n.Replace("-", ""), name.Replace("-", ""), StringComparison.OrdinalIgnoreCase));

    /// <param name="glueFolder">The folder the GLUE download script filled (needed for GLUE tasks only).</param>
    /// <param name="maxExamplesPerSplit">Cap per split (0 = all): WordNet tasks keep a seeded, balanced subset; GLUE the first rows.</param>
    public static ClassificationTask Load(string name, string? glueFolder = null, int maxExamplesPerSplit = 0, WordNetTaskOptions? wordNet = null)
    {
        if (WordNetTasks.Names.Contains(name.ToLowerInvariant()))
            return WordNetTasks.Build(name, (wordNet ?? new WordNetTaskOptions()) with { MaxExamplesPerSplit = maxExamplesPerSplit });
        if (IsGlue(name))
        {
            if (glueFolder == null)
                throw new ArgumentException($"GLUE task '{name}' needs the GLUE data folder (one sub-folder per task, as the GLUE download script leaves it)");
            return GlueTasks.Load(glueFolder, name, maxExamplesPerSplit);
        }
        throw new ArgumentException($"unknown task '{name}' (expected one of {string.Join(", ", AllNames)})", nameof(name));
    }
}
