using static TorchSharp.torch;

namespace MLNetQuant.Core.Observers;

/// <summary>The exponential-moving-average step shared by the moving-average observers.</summary>
internal static class MovingAverage
{
    /// <summary>Checks that the averaging constant lies in (0, 1].</summary>
    public static double ValidateConstant(double averagingConstant)
    {
        if (!(averagingConstant > 0 && averagingConstant <= 1))
            throw new ArgumentOutOfRangeException(nameof(averagingConstant), averagingConstant,
                "The averaging constant must be in (0, 1].");
        return averagingConstant;
    }

    /// <summary><c>running = running + c · (batch − running)</c> in place, with PyTorch's three float32 roundings
    /// (the constant is applied as a float32 scalar).</summary>
    public static void Step(Tensor running, Tensor batch, double averagingConstant)
    {
        using var delta = batch.sub(running);
        using var scaled = delta.mul(CachedScalars.Of((float)averagingConstant));
        running.add_(scaled, CachedScalars.One);
    }
}
