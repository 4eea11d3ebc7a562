using MLNetQuant.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetQuant.Modeling;

/// <summary>The functional form of the layers with a weight (TorchSharp's Conv1d, Conv2d and Linear are sealed, so a
/// quantized weight is passed to the functional op instead of being written into the module), and batch-norm folding.</summary>
internal static class WeightedLayer
{
    /// <summary>Throws when <paramref name="module"/> uses a feature the functional form (and the exporter) lacks.</summary>
    public static void ThrowIfUnsupported(string name, nn.Module module)
    {
        if (module is not Convolution conv) return;
        if (conv.transposed)
            throw new NotSupportedException($"Module '{name}' is a transposed convolution, which MLNetQuant does not support.");
        if (conv.padding_type is not null || conv.padding is null)
            throw new NotSupportedException(
                $"Module '{name}' uses symbolic padding ({conv.padding_type}); give explicit padding sizes instead.");
        if (conv.padding_mode != PaddingModes.Zeros)
            throw new NotSupportedException($"Module '{name}' pads with {conv.padding_mode}; only zero padding is supported.");
    }

    /// <summary>The layer's weight and bias parameters.</summary>
    public static (Parameter Weight, Parameter? Bias) ParametersOf(nn.Module module) => module switch
    {
        Convolution c => (c.weight!, c.bias),
        Linear l => (l.weight!, l.bias),
        Graph.OnnxNodeModule n => (n.Weight, n.Bias),
        _ => throw new ArgumentException($"{module.GetType().Name} has no weight.", nameof(module)),
    };

    /// <summary>Runs the layer with the given weight and bias.</summary>
    public static Tensor Apply(nn.Module module, Tensor x, Tensor weight, Tensor? bias) => module switch
    {
        Conv2d c => nn.functional.conv2d(x, weight, bias, c.stride, c.padding, c.dilation, c.groups),
        Conv1d c => nn.functional.conv1d(x, weight, bias, c.stride![0], c.padding![0], c.dilation![0], c.groups),
        Linear => nn.functional.linear(x, weight, bias),
        _ => throw new ArgumentException($"{module.GetType().Name} has no weight.", nameof(module)),
    };

    /// <summary>γ/√(running_var + ε) per channel: what folding multiplies the weight by (γ = 1 without affine).</summary>
    public static Tensor FoldFactor(BatchNorm bn)
    {
        using var scope = NewDisposeScope();
        var std = bn.running_var!.add(CachedScalars.Of(bn.eps), CachedScalars.One).sqrt();
        var factor = bn.weight is null ? std.reciprocal() : bn.weight.div(std);
        return factor.MoveToOuterDisposeScope();
    }

    /// <summary>β + (b − μ)·γ/σ: the folded bias.</summary>
    public static Tensor FoldedBias(BatchNorm bn, Tensor factor, Tensor? bias)
    {
        using var scope = NewDisposeScope();
        var shifted = bias is null ? bn.running_mean!.neg() : bias.sub(bn.running_mean!);
        var folded = shifted.mul(factor);
        if (bn.bias is not null) folded = folded.add(bn.bias, CachedScalars.One);
        return folded.MoveToOuterDisposeScope();
    }

    /// <summary><paramref name="perChannel"/> reshaped to broadcast along dim <paramref name="axis"/> of a tensor of
    /// rank <paramref name="rank"/>.</summary>
    public static Tensor AlongAxis(Tensor perChannel, long rank, int axis)
    {
        var shape = Enumerable.Repeat(1L, (int)rank).ToArray();
        shape[axis] = perChannel.shape[0];
        return perChannel.reshape(shape);
    }
}
