using MLNetQuant.Core;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Engine;

/// <summary>The regression tests of the oneDNN convolution-backward fault (docs/troubleshooting.md): without
/// <see cref="TorchEngine.Protect"/>, the same conv forward+backward on the same tensors gives differing, sometimes
/// non-finite gradients on this machine kind for channel counts such as 1, 3 and 12 (≈ half of the passes at 1→12).
/// Each case repeats the pass 300 times and requires every gradient to be finite and bit-identical to the first.</summary>
[TestClass]
public sealed class ConvolutionRepeatabilityTests
{
    private const int Passes = 300;

    public static IEnumerable<object[]> Cases()
    {
        foreach (var (inputs, outputs) in new[] { (1, 12), (3, 12), (12, 24), (16, 32), (20, 24) })
            foreach (var kernel in new[] { 3, 5 })
                foreach (var bias in new[] { true, false })
                    yield return new object[] { inputs, outputs, kernel, bias };
    }

    [TestMethod]
    public void TheGuardRanBeforeTheFirstTest()
    {
        var expected = RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.X86
            ? new[] { TorchEngineProtection.Capped, TorchEngineProtection.UserSetting }
            : new[] { TorchEngineProtection.NotApplicable };
        CollectionAssert.Contains(expected, TorchEngine.Protection, "the generated module initializer did not run");
        if (TorchEngine.Protection == TorchEngineProtection.Capped)
            Assert.AreEqual(TorchEngine.SafeIsa, Environment.GetEnvironmentVariable(TorchEngine.IsaCapVariable));
        Assert.AreEqual(TorchEngine.Protection, TorchEngine.Protect(), "a second call must return the first outcome");
    }

    [TestMethod]
    [DynamicData(nameof(Cases))]
    public void RepeatedForwardBackward_IsFiniteAndBitIdentical(int inputs, int outputs, int kernel, bool bias)
    {
        random.manual_seed(1);
        using var x = randn(4, inputs, 28, 28).requires_grad_();
        using var w = randn(outputs, inputs, kernel, kernel).mul_(CachedScalars.Of(0.1)).requires_grad_();
        using var b = bias ? randn(outputs).requires_grad_() : null;
        float[]? first = null;
        int differing = 0, nonFinite = 0;
        for (var pass = 0; pass < Passes; pass++)
        {
            using var scope = NewDisposeScope();
            x.grad?.zero_();
            w.grad?.zero_();
            b?.grad?.zero_();
            var y = nn.functional.conv2d(x, w, b, padding: new long[] { kernel / 2, kernel / 2 });
            y.mul(y).mean().backward();
            var gradients = cat(new[] { x.grad!.flatten(), w.grad!.flatten() }.Concat(b is null ? Array.Empty<Tensor>() : new[] { b.grad!.flatten() }).ToArray());
            var values = gradients.data<float>().ToArray();
            if (values.Any(v => !float.IsFinite(v))) nonFinite++;
            if (first is null) first = values;
            else if (!values.AsSpan().SequenceEqual(first)) differing++;
        }
        Assert.IsTrue(first!.All(float.IsFinite), "the first pass already had non-finite gradients");
        Assert.AreEqual(0, differing + nonFinite,
            $"{inputs}->{outputs} k{kernel} bias={bias}: {differing} of {Passes - 1} passes differ from the first, {nonFinite} non-finite " +
            $"({TorchEngine.IsaCapVariable}={Environment.GetEnvironmentVariable(TorchEngine.IsaCapVariable)})");
    }
}
