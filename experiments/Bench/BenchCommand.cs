using System.CommandLine;

namespace NativeSparsity.Experiments.Bench;

/// <summary>`nsparse bench ...`: performance measurements, never tests. Each benchmark is a file here.</summary>
public static class BenchCommand
{
    public static Command Build()
    {
        var bench = new Command("bench", "Measure throughput of the engine's parts (run with -c Release).");
        // Each benchmark adds its subcommand here.
        bench.Subcommands.Add(ThresholdBench.Build());
        bench.Subcommands.Add(KernelBench.Build());
        bench.Subcommands.Add(GemmBench.Build());
        bench.Subcommands.Add(SparseBench.Build());
        bench.Subcommands.Add(InferBench.Build());
        bench.Subcommands.Add(SparseStepBench.Build());
        bench.Subcommands.Add(TrainBench.Build());
        bench.Subcommands.Add(FinetuneBench.Build());
        return bench;
    }
}
