package org.tensorflow.lite.gpu;

public class GpuDelegateFactory {
    public GpuDelegateFactory() { throw new RuntimeException("Stub!"); }

    public static class Options {
        public Options() { throw new RuntimeException("Stub!"); }
    }
}
