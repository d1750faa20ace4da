// Test-only: see NvInfer.h beside this file.
#pragma once
#include "NvInfer.h"
