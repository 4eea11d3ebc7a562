using MLNetQuant.Algorithms;

namespace MLNetQuant.Training;

/// <summary>Binarized neural network training (NNI's BNNQuantizer): ±1 weights and outputs. The usual recipe is
/// Adam, Hardtanh activations, and the first and last layers left in float.</summary>
public sealed class BnnOptions : TrainingQuantizationOptions
{
    /// <summary>Clip the latent weights of binarized layers to [−1, 1] after every optimizer step (the paper's rule;
    /// NNI v2 means to but does not).</summary>
    public bool ClipLatentWeights { get; set; } = true;

    internal override QuantAlgorithm CreateAlgorithm() => new BnnAlgorithm(ClipLatentWeights);
}
