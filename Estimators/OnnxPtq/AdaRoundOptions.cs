namespace MLNetQuant.OnnxPtq;

/// <summary>AdaRound (Nagel et al., "Up or Down? Adaptive Rounding for Post-Training Quantization", 2020): instead of
/// rounding each weight to the nearest grid point, learn per weight whether to round up or down so that the layer's
/// output on calibration data moves least. Set <see cref="OnnxQuantizationOptions.AdaRound"/> to use it; the defaults
/// follow the paper and AIMET except the iteration count (AIMET: 10,000), which is sized for CPUs.</summary>
public sealed class AdaRoundOptions
{
    /// <summary>Optimizer steps per layer.</summary>
    public int Iterations { get; set; } = 2_000;

    /// <summary>Calibration rows (the first ones) whose layer inputs the optimization reads; they are held in memory,
    /// one layer at a time.</summary>
    public int Rows { get; set; } = 256;

    /// <summary>Rows per optimizer step.</summary>
    public int BatchSize { get; set; } = 32;

    /// <summary>λ, the weight of the regularizer that drives each rounding variable to 0 or 1.</summary>
    public double Regularization { get; set; } = 0.01;

    /// <summary>Adam's learning rate.</summary>
    public double LearningRate { get; set; } = 0.001;

    /// <summary>The share of the iterations at the start without the regularizer (reconstruction only).</summary>
    public double WarmUp { get; set; } = 0.2;

    /// <summary>Seed of the batch sampling (runs are deterministic for a seed).</summary>
    public int Seed { get; set; }

    internal void Validate()
    {
        if (Iterations < 1) throw new ArgumentOutOfRangeException(nameof(Iterations), Iterations, "AdaRound.Iterations must be >= 1.");
        if (Rows < 1) throw new ArgumentOutOfRangeException(nameof(Rows), Rows, "AdaRound.Rows must be >= 1.");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "AdaRound.BatchSize must be >= 1.");
        if (!(Regularization >= 0) || double.IsInfinity(Regularization))
            throw new ArgumentOutOfRangeException(nameof(Regularization), Regularization, "AdaRound.Regularization must be finite and >= 0.");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "AdaRound.LearningRate must be finite and > 0.");
        if (!(WarmUp >= 0 && WarmUp < 1)) throw new ArgumentOutOfRangeException(nameof(WarmUp), WarmUp, "AdaRound.WarmUp must be in [0, 1).");
    }
}
