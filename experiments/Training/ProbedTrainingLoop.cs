using NativeSparsity.Experiments.Reporting;

namespace NativeSparsity.Experiments.Training;

/// <summary>A trainer the probed loop can drive: MLM pre-training or supervised pre-training.</summary>
public interface IProbedTrainer
{
    long Step { get; }
    PretrainStepResult TrainStep();
    void SaveCheckpoint(string folder, Action<string>? extraFiles = null);
    void LoadCheckpoint(string folder);
}

/// <summary>
/// The loop shared by every probed run: train to the last step, log every few steps, probe when
/// due (and at step 0), checkpoint and prune old checkpoints, show a live line, report the time
/// spent probing.
/// </summary>
public static class ProbedTrainingLoop
{
    /// <summary>
    /// Continues from <paramref name="resumeFrom"/> (logs cut back to its step, since the interrupted run
    /// may have logged past it) or starts the logs afresh.
    /// </summary>
    public static void Restore(IProbedTrainer trainer, string? resumeFrom, ProbeLog probeLog, TrainLog trainLog, Action<string> say)
    {
        if (resumeFrom == null)
        {
            probeLog.TruncateAfter(-1);
            trainLog.TruncateAfter(-1);
            return;
        }
        trainer.LoadCheckpoint(resumeFrom);
        probeLog.TruncateAfter(trainer.Step);
        trainLog.TruncateAfter(trainer.Step);
        say($"resumed from {resumeFrom} at step {trainer.Step}");
    }

    public static PretrainRunSummary Run(IProbedTrainer trainer, SparsityProbe probe, ProbeLog probeLog, TrainLog trainLog,
                                         PretrainRunOptions o, string checkpoints, string? resumedFrom, Action<string> saveExtraFiles,
                                         string accuracyLabel, string backendName, Action<string> say)
    {
        double trainSeconds = 0, probeSeconds = 0;
        string lastCheckpoint = resumedFrom ?? "";
        var progress = new ProgressLine(o.Train.Steps, trainer.Step);
        void Probe()
        {
            ProbeRecord r;
            // Weights an update made non-finite show first in the probe's held-out loss: that is divergence, not a bug.
            try { r = probe.Run(probe.OmpDue(trainer.Step, o.Train.Steps)); }
            catch (ArithmeticException) { throw new TrainingDivergedException(trainer.Step, double.NaN); }
            probeSeconds += r.Seconds;
            probeLog.Append(r);
            if (!o.Quiet)
                progress.Message($"probe @ step {r.Step}: zeros {r.Total("exact_zero")}, |w|<1e-3 {r.Total("abs_below", 1e-3)}" +
                                 (r.Pruned.Count > 0 ? $", {accuracyLabel} {r.Dense.Accuracy:P1}, probe essential sparsity {r.ProbeEssentialSparsity:P0}" : "") +
                                 $" ({r.Seconds:F1}s)");
        }
        if (trainer.Step == 0 && o.Probe.Every > 0) Probe();
        double recentLoss = double.NaN;
        long tokensPerStep = (long)o.Train.BatchSize * o.Train.SequenceLength * o.Train.GradientAccumulation;
        while (trainer.Step < o.Train.Steps)
        {
            var r = trainer.TrainStep();
            trainSeconds += r.Seconds;
            recentLoss = double.IsNaN(recentLoss) ? r.Loss : 0.9 * recentLoss + 0.1 * r.Loss;
            if (r.Step % o.LogEvery == 0 || r.Step == o.Train.Steps) trainLog.Append(r, tokensPerStep);
            if (!o.Quiet)
                progress.Update(r.Step, $"loss {recentLoss:F3}  lr {r.LearningRate:0.##e0}  {tokensPerStep / r.Seconds:F0} tok/s");
            if (probe.IsDue(r.Step, o.Train.Steps)) Probe();
            if (r.Step % o.CheckpointEvery == 0 || r.Step == o.Train.Steps)
            {
                lastCheckpoint = Path.Combine(checkpoints, $"step-{r.Step:D7}");
                trainer.SaveCheckpoint(lastCheckpoint, saveExtraFiles);
                PretrainRun.Prune(checkpoints, o.KeepLast, o.KeepEvery);
            }
        }
        progress.Finish();
        say($"done: {trainer.Step} steps, training {ProgressLine.Format(TimeSpan.FromSeconds(trainSeconds))}, " +
            $"probing {ProgressLine.Format(TimeSpan.FromSeconds(probeSeconds))} ({100 * probeSeconds / Math.Max(trainSeconds + probeSeconds, 1e-9):F1}% of the time)");
        return new PretrainRunSummary(trainer.Step, trainSeconds, probeSeconds, probeLog.CsvPath, lastCheckpoint, backendName);
    }
}
