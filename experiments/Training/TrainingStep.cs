using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Optim;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Models.Bert;

namespace NativeSparsity.Experiments.Training;

/// <summary>The parts of one optimizer step that every trainer shares.</summary>
public static class TrainingStep
{
    /// <summary>Forward and backward of one micro-batch; a non-finite loss is reported as divergence at <paramref name="step"/>.</summary>
    public static double ForwardBackward(BertModel model, BertBatch batch, in DropoutPlan dropout, long step)
    {
        double loss;
        try { loss = model.Forward(batch, dropout); }
        catch (ArithmeticException) { throw new TrainingDivergedException(step, double.NaN); }
        if (!double.IsNaN(loss)) model.Backward();
        return loss;
    }

    /// <summary>
    /// Averages the accumulated gradients (the whole flat buffer <paramref name="grads"/>) over <paramref name="microBatches"/>, computes the global
    /// gradient norm, stops on a non-finite loss or gradient, and applies the optimizer.
    /// </summary>
    public static PretrainStepResult Finish(IBackend be, Tensor grads, Tensor gradNormSquared, AdamWOptimizer optimizer,
                                            double loss, int microBatches, System.Diagnostics.Stopwatch clock)
    {
        long step = optimizer.Step + 1;
        if (microBatches > 1) be.Scale(grads, 1f / microBatches);
        be.SumOfSquares(grads, gradNormSquared);
        var sumsq = new float[1];
        be.CopyToHost<float>(gradNormSquared, sumsq);
        if (!double.IsFinite(loss) || !float.IsFinite(sumsq[0])) throw new TrainingDivergedException(step, loss);
        optimizer.Update(be, gradNormSquared);
        return new PretrainStepResult(optimizer.Step, loss, optimizer.LastLearningRate, Math.Sqrt(sumsq[0]), clock.Elapsed.TotalSeconds);
    }
}
