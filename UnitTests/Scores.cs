namespace MLNetQuant.UnitTests;

/// <summary>Reading class scores: the predicted class is the first index of the largest score.</summary>
internal static class Scores
{
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }
}
