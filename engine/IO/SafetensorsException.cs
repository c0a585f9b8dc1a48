namespace NativeSparsity.Engine.IO;

/// <summary>
/// A safetensors file that cannot be read or written as asked. The message always names the file
/// and, where one is involved, the tensor, so a user can tell which checkpoint is broken and how.
/// </summary>
public sealed class SafetensorsException : IOException
{
    public SafetensorsException(string path, string? tensor, string problem, Exception? inner = null)
        : base(Format(path, tensor, problem), inner)
    {
        FilePath = path;
        TensorName = tensor;
        Problem = problem;
    }

    public string FilePath { get; }
    public string? TensorName { get; }
    public string Problem { get; }

    private static string Format(string path, string? tensor, string problem) =>
        tensor == null ? $"safetensors file '{path}': {problem}" : $"safetensors file '{path}', tensor '{tensor}': {problem}";
}
