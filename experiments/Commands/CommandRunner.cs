using NativeSparsity.Experiments.Training;

namespace NativeSparsity.Experiments.Commands;

/// <summary>Turns expected failures into one clear line on stderr and an exit code, not a stack trace.</summary>
public static class CommandRunner
{
    public static int Run(Action body)
    {
        try
        {
            body();
            return 0;
        }
        catch (TrainingDivergedException e)
        {
            Console.Error.WriteLine($"\nerror: {e.Message}");
            return 3;
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or InvalidOperationException or IOException
                                      or NotSupportedException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"\nerror: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e.GetType().Name.StartsWith("Cuda", StringComparison.Ordinal) || e.GetType().Name.Contains("Safetensors"))
        {
            Console.Error.WriteLine($"\nerror: {e.Message}");
            return 2;
        }
    }
}
