using TorchSharp;
using static TorchSharp.torch;

namespace MLNetQuant.Core;

/// <summary>Argument checks on tensors that produce messages naming the argument at fault.</summary>
internal static class TensorChecks
{
    /// <summary>Throws when any element is NaN or infinite. Costs one device synchronisation.</summary>
    public static void ThrowIfNotFinite(Tensor t, string argumentName)
    {
        using var scope = NewDisposeScope();
        if (isfinite(t).all().item<bool>()) return;
        var hasNaN = isnan(t).any().item<bool>();
        throw new ArgumentException(
            $"{argumentName} contains {(hasNaN ? "NaN" : "infinite")} values; quantization needs finite data. " +
            "Check the input data and the preceding layers (a diverged model produces NaN).", argumentName);
    }

    /// <summary>Throws unless the tensor is floating point.</summary>
    public static void ThrowIfNotFloatingPoint(Tensor t, string argumentName)
    {
        if (!t.is_floating_point())
            throw new ArgumentException($"{argumentName} must be a floating-point tensor, not {t.dtype}.", argumentName);
    }

    /// <summary>Throws unless <paramref name="axis"/> is a valid dimension of <paramref name="t"/>.</summary>
    public static void ThrowIfAxisOutOfRange(Tensor t, int axis, string argumentName)
    {
        if (axis < 0 || axis >= t.dim())
            throw new ArgumentOutOfRangeException(argumentName, axis,
                $"The channel axis {axis} does not exist in a tensor of shape [{string.Join(", ", t.shape)}].");
    }
}
