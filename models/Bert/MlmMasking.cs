using NativeSparsity.Engine.Random;

namespace NativeSparsity.Models.Bert;

/// <summary>
/// BERT's masked-language-model corruption: each maskable token is selected with probability
/// <see cref="Probability"/> (15%); a selected token becomes [MASK] 80% of the time, a random
/// ordinary token 10%, and stays unchanged 10%; the model must predict the original. Draws come
/// from Philox (seed, stream = MlmStreamBase + step, counter = 4 * token index + draw), so a step's
/// masks are reproducible on resume and identical on any backend.
/// </summary>
public sealed record MlmMasking(int MaskTokenId, int FirstOrdinaryTokenId, int VocabSize, float Probability = 0.15f,
                                float MaskShare = 0.8f, float RandomShare = 0.1f)
{
    private const ulong MlmStreamBase = 1UL << 62;

    /// <summary>
    /// Corrupts <paramref name="batch"/>'s input ids in place and sets its MLM positions and labels.
    /// Tokens with ids below <see cref="FirstOrdinaryTokenId"/> (the specials) and padding are never selected.
    /// </summary>
    public void Apply(BertBatch batch, ulong seed, long step)
    {
        if (FirstOrdinaryTokenId >= VocabSize)
            throw new ArgumentException($"no ordinary tokens: first ordinary id {FirstOrdinaryTokenId} >= vocabulary {VocabSize}");
        ulong stream = MlmStreamBase + (ulong)step;
        var positions = new List<int>();
        var labels = new List<int>();
        var ids = batch.InputIds;
        for (int i = 0; i < ids.Length; i++)
        {
            if (batch.AttentionMask[i] == 0 || ids[i] < FirstOrdinaryTokenId) continue;
            ulong c = 4UL * (ulong)i;
            if (Philox.Uniform(seed, stream, c) >= Probability) continue;
            positions.Add(i);
            labels.Add(ids[i]);
            float choice = Philox.Uniform(seed, stream, c + 1);
            if (choice < MaskShare) ids[i] = MaskTokenId;
            else if (choice < MaskShare + RandomShare)
            {
                uint r = Philox.Bits(seed, stream, c + 2);
                ids[i] = FirstOrdinaryTokenId + (int)(r % (uint)(VocabSize - FirstOrdinaryTokenId));
            }
        }
        batch.MlmPositions = positions.ToArray();
        batch.MlmLabels = labels.ToArray();
    }
}
