using System.Runtime.InteropServices;

namespace MLNetQuant;

/// <summary>Keeps TorchSharp's CPU training sound. TorchSharp-cpu 0.107 bundles libtorch 2.10 with oneDNN 3.7.1, whose
/// AVX-512 (and, more rarely, AVX2) JIT convolution backward pass returns differing and sometimes non-finite
/// gradients when it runs on more than one thread and the channel count is not a multiple of the SIMD block (1, 3, 12
/// input channels …): the same tensors give a different gradient on about half of the passes. Capping oneDNN's
/// instruction set at SSE4.1 (<c>DNNL_MAX_CPU_ISA=SSE41</c>) removes the fault at about the same speed on the
/// reference CNN (docs/troubleshooting.md has the measurements and how the fault was found).</summary>
/// <remarks>oneDNN reads the cap once, at the first forward pass of any layer in the process (a Linear is enough), so
/// it must be set before that. MLNetQuant sets it when its assemblies load and, through its build targets, before
/// the <c>Main</c> of every application and test project that references <c>MLNetQuant.Estimators</c>. An application
/// that loads MLNetQuant some other way, or runs TorchSharp forward passes before touching it, calls
/// <see cref="Protect"/> first thing. A value of <c>DNNL_MAX_CPU_ISA</c> already in the environment is the user's
/// choice and is left alone (set it to <c>ALL</c> to opt out).</remarks>
public static class TorchEngine
{
    /// <summary>The oneDNN environment variable that caps its instruction set.</summary>
    public const string IsaCapVariable = "DNNL_MAX_CPU_ISA";

    /// <summary>The cap MLNetQuant applies: the widest instruction set measured free of the fault.</summary>
    public const string SafeIsa = "SSE41";

    private static readonly object Gate = new();
    private static TorchEngineProtection? _protection;

    /// <summary>What <see cref="Protect"/> did in this process (null before it ran).</summary>
    public static TorchEngineProtection? Protection
    {
        get { lock (Gate) return _protection; }
    }

    /// <summary>Applies the oneDNN instruction-set cap to this process, once; later calls return the first outcome.
    /// Call it before the first TorchSharp forward pass. Thread-safe.</summary>
    /// <returns>Whether the cap was set, was already chosen by the user, or does not apply to this processor.</returns>
    public static TorchEngineProtection Protect()
    {
        lock (Gate)
        {
            if (_protection is { } done) return done;
            try
            {
                _protection = Apply();
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or MarshalDirectiveException)
            {
                _protection = TorchEngineProtection.Unavailable; // reported by the runner's log; never fail the caller's startup
            }
            return _protection.Value;
        }
    }

    private static TorchEngineProtection Apply()
    {
        // oneDNN's instruction-set names are x86's; other processors run other kernels.
        if (RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.X86))
            return TorchEngineProtection.NotApplicable;
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable(IsaCapVariable)))
            return TorchEngineProtection.UserSetting;
        // .NET keeps its own copy of the environment on Unix; oneDNN reads the C library's (GetEnvironmentVariable on
        // Windows, which .NET's call below updates), so on Unix set it there too.
        if (!OperatingSystem.IsWindows())
        {
            var c = NativeEnvironment.Load();
            if (c is null) return TorchEngineProtection.Unavailable;
            if (c.Getenv(IsaCapVariable) is { Length: > 0 }) return TorchEngineProtection.UserSetting;
            if (!c.Setenv(IsaCapVariable, SafeIsa)) return TorchEngineProtection.Unavailable;
        }
        Environment.SetEnvironmentVariable(IsaCapVariable, SafeIsa);
        return TorchEngineProtection.Capped;
    }
}
