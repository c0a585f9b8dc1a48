namespace NativeSparsity.Models.Bert;

/// <summary>
/// One batch on the host, row-major [Batch, Seq]. MLM targets are given sparsely: flat positions
/// (b*Seq + t) and the token each should predict. Classification labels are one per sequence
/// (or a float target per sequence for regression).
/// </summary>
public sealed class BertBatch
{
    public BertBatch(int batch, int seq)
    {
        if (batch <= 0 || seq <= 0) throw new ArgumentException($"batch ({batch}) and sequence length ({seq}) must be positive");
        Batch = batch;
        Seq = seq;
        InputIds = new int[batch * seq];
        TokenTypeIds = new int[batch * seq];
        AttentionMask = new int[batch * seq];
    }

    public int Batch { get; }
    public int Seq { get; }
    public int[] InputIds { get; }
    public int[] TokenTypeIds { get; }

    /// <summary>1 for a real token, 0 for padding.</summary>
    public int[] AttentionMask { get; }

    public int[] MlmPositions { get; set; } = Array.Empty<int>();
    public int[] MlmLabels { get; set; } = Array.Empty<int>();

    /// <summary>Class index per sequence, for classification heads.</summary>
    public int[]? Labels { get; set; }

    /// <summary>Next-sentence labels per sequence (0: B follows A, 1: B is random), for the NSP head.</summary>
    public int[]? NextSentenceLabels { get; set; }

    /// <summary>Target per sequence, for a regression head (one label).</summary>
    public float[]? RegressionTargets { get; set; }

    /// <summary>Checks ids against the config, naming the first bad position.</summary>
    public void Validate(BertConfig config)
    {
        if (Seq > config.MaxPositionEmbeddings)
            throw new ArgumentException($"sequence length {Seq} exceeds max_position_embeddings {config.MaxPositionEmbeddings}");
        for (int i = 0; i < InputIds.Length; i++)
        {
            if ((uint)InputIds[i] >= (uint)config.VocabSize)
                throw new ArgumentException($"input id {InputIds[i]} at position {i} is outside the vocabulary [0, {config.VocabSize})");
            if ((uint)TokenTypeIds[i] >= (uint)config.TypeVocabSize)
                throw new ArgumentException($"token type id {TokenTypeIds[i]} at position {i} is outside [0, {config.TypeVocabSize})");
        }
        if (MlmPositions.Length != MlmLabels.Length)
            throw new ArgumentException($"{MlmPositions.Length} MLM positions but {MlmLabels.Length} MLM labels");
        for (int i = 0; i < MlmPositions.Length; i++)
        {
            if ((uint)MlmPositions[i] >= (uint)InputIds.Length)
                throw new ArgumentException($"MLM position {MlmPositions[i]} is outside the batch of {InputIds.Length} tokens");
            if ((uint)MlmLabels[i] >= (uint)config.VocabSize)
                throw new ArgumentException($"MLM label {MlmLabels[i]} is outside the vocabulary [0, {config.VocabSize})");
        }
    }
}
