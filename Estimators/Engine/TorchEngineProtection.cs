namespace MLNetQuant;

/// <summary>The outcome of <see cref="TorchEngine.Protect"/>.</summary>
public enum TorchEngineProtection
{
    /// <summary>MLNetQuant set <c>DNNL_MAX_CPU_ISA=SSE41</c> for this process.</summary>
    Capped,

    /// <summary><c>DNNL_MAX_CPU_ISA</c> was already set (by the user or the launcher) and was left as it was.</summary>
    UserSetting,

    /// <summary>Not an x86 processor: oneDNN's x86 kernels, and the fault, do not apply.</summary>
    NotApplicable,

    /// <summary>The C library's <c>setenv</c> could not be reached, so the cap is not applied: set
    /// <c>DNNL_MAX_CPU_ISA=SSE41</c> in the environment before starting the process. Training logs a warning.</summary>
    Unavailable,
}
