using Microsoft.ML;

namespace MLNetQuant.Training;

/// <summary>Options of the algorithms that train (QAT, LSQ, DoReFa, BNN): epochs, optimizer, validation.</summary>
public abstract class TrainingQuantizationOptions : QuantizationOptions
{
    /// <summary>Passes over the training data.</summary>
    public int Epochs { get; set; } = 1;

    /// <summary>Optimizer learning rate.</summary>
    public double LearningRate { get; set; } = 0.01;

    /// <summary>Epochs after which the learning rate is multiplied by <see cref="LearningRateDecay"/> (PyTorch's
    /// MultiStepLR, the schedule of NNI's BNN example: e.g. { 10 } trains epochs 11… at a tenth of the rate). Empty, the
    /// default, keeps the rate constant.</summary>
    public IList<int> LearningRateMilestones { get; set; } = new List<int>();

    /// <summary>The factor applied at each of <see cref="LearningRateMilestones"/>, in (0, 1].</summary>
    public double LearningRateDecay { get; set; } = 0.1;

    /// <summary>SGD or Adam.</summary>
    public QuantOptimizer Optimizer { get; set; } = QuantOptimizer.Sgd;

    /// <summary>SGD momentum (ignored by Adam).</summary>
    public double Momentum { get; set; } = 0.9;

    /// <summary>L2 weight decay.</summary>
    public double WeightDecay { get; set; }

    /// <summary>Evaluated after every epoch when set; its loss and accuracy go to the log and the history.</summary>
    public IDataView? ValidationData { get; set; }

    /// <summary>Rows held in the shuffling pool (ML.NET's ShuffleRows; sources that can shuffle are also read in random
    /// order). Larger shuffles better and holds more rows in memory.</summary>
    public int ShufflePoolSize { get; set; } = 10_000;

    internal override void Validate()
    {
        base.Validate();
        if (Epochs < 1) throw new ArgumentOutOfRangeException(nameof(Epochs), Epochs, "Epochs must be >= 1.");
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "LearningRate must be positive and finite.");
        if (!(Momentum >= 0 && Momentum < 1))
            throw new ArgumentOutOfRangeException(nameof(Momentum), Momentum, "Momentum must be in [0, 1).");
        if (!(WeightDecay >= 0) || !double.IsFinite(WeightDecay))
            throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, "WeightDecay must be >= 0 and finite.");
        if (LearningRateMilestones is null)
            throw new ArgumentNullException(nameof(LearningRateMilestones), "LearningRateMilestones must be a list (empty for a constant rate).");
        for (var i = 0; i < LearningRateMilestones.Count; i++)
            if (LearningRateMilestones[i] < 1 || LearningRateMilestones[i] >= Epochs || (i > 0 && LearningRateMilestones[i] <= LearningRateMilestones[i - 1]))
                throw new ArgumentOutOfRangeException(nameof(LearningRateMilestones), $"[{string.Join(", ", LearningRateMilestones)}]",
                    $"LearningRateMilestones must be increasing epochs between 1 and Epochs - 1 ({Epochs - 1}).");
        if (!(LearningRateDecay > 0 && LearningRateDecay <= 1))
            throw new ArgumentOutOfRangeException(nameof(LearningRateDecay), LearningRateDecay, "LearningRateDecay must be in (0, 1].");
        if (!Enum.IsDefined(Optimizer))
            throw new ArgumentOutOfRangeException(nameof(Optimizer), Optimizer, "Unknown optimizer.");
        if (ShufflePoolSize < 1)
            throw new ArgumentOutOfRangeException(nameof(ShufflePoolSize), ShufflePoolSize, "ShufflePoolSize must be >= 1.");
    }
}
