namespace NativeSparsity.Engine.Optim;

/// <summary>
/// Learning rate by update number. <see cref="At"/>(t) is the rate used for the t-th update
/// (1-based), which is Hugging Face's schedule evaluated after t - 1 scheduler steps (the trainer
/// steps the optimizer, then the scheduler).
/// </summary>
public abstract record LearningRateSchedule
{
    public abstract float At(long step);

    /// <summary>The same rate throughout.</summary>
    public static LearningRateSchedule Constant(float rate) => new ConstantSchedule(rate);

    /// <summary>
    /// Linear warm-up from 0 to <paramref name="peak"/> over <paramref name="warmupSteps"/> updates,
    /// then linear decay to 0 at <paramref name="totalSteps"/> (get_linear_schedule_with_warmup).
    /// BERT pre-training uses a warm-up; the paper's fine-tuning uses none.
    /// </summary>
    public static LearningRateSchedule LinearWarmupDecay(float peak, long warmupSteps, long totalSteps) =>
        new LinearWarmupDecaySchedule(peak, warmupSteps, totalSteps);

    /// <summary>No warm-up, linear decay to 0 over <paramref name="totalSteps"/> (the paper's fine-tuning).</summary>
    public static LearningRateSchedule LinearDecay(float peak, long totalSteps) => new LinearWarmupDecaySchedule(peak, 0, totalSteps);

    private protected static void CheckStep(long step)
    {
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), step, "update numbers are 1-based");
    }
}

public sealed record ConstantSchedule(float Rate) : LearningRateSchedule
{
    public override float At(long step)
    {
        CheckStep(step);
        return Rate;
    }
}

public sealed record LinearWarmupDecaySchedule : LearningRateSchedule
{
    public LinearWarmupDecaySchedule(float peak, long warmupSteps, long totalSteps)
    {
        if (!(peak >= 0) || float.IsInfinity(peak)) throw new ArgumentOutOfRangeException(nameof(peak), peak, "peak learning rate must be finite and non-negative");
        if (totalSteps <= 0) throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, "total steps must be positive");
        if (warmupSteps < 0 || warmupSteps > totalSteps)
            throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, $"warm-up steps must lie in [0, {totalSteps}]");
        Peak = peak; WarmupSteps = warmupSteps; TotalSteps = totalSteps;
    }

    public float Peak { get; }
    public long WarmupSteps { get; }
    public long TotalSteps { get; }

    public override float At(long step)
    {
        CheckStep(step);
        long done = step - 1;
        double factor = done < WarmupSteps
            ? (double)done / WarmupSteps
            : Math.Max(0.0, (double)(TotalSteps - done) / Math.Max(1, TotalSteps - WarmupSteps));
        return (float)(Peak * factor);
    }
}
