using System.Collections.Concurrent;
using TorchSharp;

namespace MLNetQuant.Core;

/// <summary>Long-lived TorchSharp scalars for the constants of the per-step code. TorchSharp's <see cref="Scalar"/>
/// owns a native handle that its finalizer frees, and an implicitly converted temporary (<c>x.mul(2)</c>, or the
/// alpha of <c>x.add(y)</c>) is unreachable while its native call still runs: a garbage collection at that moment can
/// free it mid-call (seen once here as a corrupt scalar inside a native add). Scalars from this cache stay reachable
/// for the life of the process, and are allocated once. TorchSharp's one-argument <c>add</c> passes such a temporary
/// alpha itself (<c>sub</c> has none), so every add here names <see cref="One"/> (a missed one corrupted a zero-point
/// in 1 of 10 CI runs: "toFloat" from c10::Scalar inside a native add).</summary>
internal static class CachedScalars
{
    private static readonly ConcurrentDictionary<double, Scalar> Doubles = new();
    private static readonly ConcurrentDictionary<long, Scalar> Longs = new();

    /// <summary>1, the alpha of tensor additions and subtractions.</summary>
    public static Scalar One { get; } = Of(1.0);

    /// <summary>A floating-point scalar.</summary>
    public static Scalar Of(double value) => Doubles.GetOrAdd(value, v => v.ToScalar());

    /// <summary>An integer scalar.</summary>
    public static Scalar OfInt(long value) => Longs.GetOrAdd(value, v => v.ToScalar());
}
